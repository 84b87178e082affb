//! `testudo keys`: the master key and the data key of an encrypted store.
//!
//! - `keys generate --out PATH`: a new random master key, written to a new file (mode 0600).
//! - `keys rotate-master`: rewraps the store's data keys (and the per-database keys in
//!   `dbkeys`) under a new master key; no data is
//!   rewritten, the keyring file is replaced atomically, and it may run while the server runs
//!   (which needs the new key at its next start). With `--audit-dir`, the audit log's
//!   segment keys too (`testudo audit rewrap`).
//! - `keys rotate-data`: re-encrypts every block of the data file under a new data key. With
//!   the server running (the data file is locked), online: the new key goes into the keyring
//!   as a rotation request, the server re-seals the file in the background, and the command
//!   waits (printing progress) until the server has dropped the old key, or returns at once
//!   with `--no-wait`. With the server stopped, offline (and it finishes an online rotation a
//!   stopped server left unfinished).
//! - `keys verify`: checks that every block authenticates, and that every per-database key
//!   in `dbkeys` unwraps. Offline too.
//!
//! **Invariants:** no key is ever printed or logged, only fingerprints; a key file is created
//! private and never overwritten; stdout gets one summary line per command, progress goes to
//! stderr.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use testudo_storage_redb::keys::{MasterKey, MasterKeySource};
use testudo_storage_redb::{
    RotationStatus, data_file_in_use, request_rotation, rotate_data, rotate_master,
    rotation_status, verify_db_keys, verify_store,
};

use crate::CliError;
use crate::store::{self, StoreArgs};

/// The environment variable that may carry the new master key of `keys rotate-master`.
const NEW_MASTER_KEY_ENV: &str = "TESTUDO_NEW_MASTER_KEY";

#[derive(Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write a new random master key (base64) to a new file readable by its owner only.
    Generate(GenerateArgs),
    /// Rewrap the store's data keys under a new master key (no data is rewritten; may run
    /// while the server runs, which then needs the new key at its next start).
    RotateMaster(RotateMasterArgs),
    /// Re-encrypt every block of the store under a new data key: in the background of a
    /// running server (waiting until it is done, unless --no-wait), or offline.
    RotateData(RotateDataArgs),
    /// Check that every block of the encrypted store authenticates (stop the server first).
    Verify(StoreDir),
}

#[derive(Args)]
struct GenerateArgs {
    /// The file to create (refused if it exists).
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
}

#[derive(Args)]
struct StoreDir {
    /// Where the database keeps its files.
    #[arg(long, default_value = "./testudo-data")]
    data_dir: PathBuf,

    /// The store's current master key.
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args)]
struct RotateDataArgs {
    #[command(flatten)]
    dir: StoreDir,

    /// With the server running: return as soon as the rotation is requested, instead of
    /// waiting for the server to finish it (run the command again to wait for it).
    #[arg(long)]
    no_wait: bool,
}

#[derive(Args)]
struct RotateMasterArgs {
    #[command(flatten)]
    dir: StoreDir,

    #[command(flatten)]
    new: NewMasterKeyArgs,

    /// The audit directory of an encrypted audit log (`--audit-dir` of `testudo serve`):
    /// its segments' keys are rewrapped under the new master key too, so that the old one
    /// is no longer needed to read them.
    #[arg(long, value_name = "DIR")]
    audit_dir: Option<PathBuf>,
}

/// Where the new master key of a rotation comes from.
#[derive(Args)]
pub struct NewMasterKeyArgs {
    /// The new master key's file (same format and permission rule as --master-key-file).
    /// Alternatives: the TESTUDO_NEW_MASTER_KEY environment variable, or
    /// --new-master-key-command.
    #[arg(long, value_name = "PATH")]
    new_master_key_file: Option<PathBuf>,

    /// A command that prints the new master key on stdout (base64).
    #[arg(long, value_name = "COMMAND")]
    new_master_key_command: Option<String>,
}

pub fn run(args: KeysArgs) -> Result<(), CliError> {
    match args.command {
        KeysCommand::Generate(args) => generate(&args),
        KeysCommand::RotateMaster(args) => rotate_master_key(&args),
        KeysCommand::RotateData(args) => rotate_data_key(&args),
        KeysCommand::Verify(args) => verify(&args),
    }
}

/// One summary line on stdout.
fn say(line: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|err| CliError::Failed(format!("could not write to stdout: {err}")))
}

fn generate(args: &GenerateArgs) -> Result<(), CliError> {
    let (key, text) = MasterKey::generate().map_err(|e| store::key_error(&e))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&args.out).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    });
    written
        .map_err(|e| CliError::Failed(format!("could not create {}: {e}", args.out.display())))?;
    say(&format!(
        "wrote a new master key to {} (fingerprint {})",
        args.out.display(),
        key.fingerprint()
    ))
}

/// The store's current master key, which these commands cannot do without.
fn current_key(dir: &StoreDir) -> Result<MasterKey, CliError> {
    store::master_key(&dir.store)?.ok_or_else(|| {
        CliError::Refused(
            "give the store's master key with --master-key-file, TESTUDO_MASTER_KEY or \
             --master-key-command"
                .to_owned(),
        )
    })
}

impl NewMasterKeyArgs {
    /// Loads the new master key from the one source given.
    pub fn load(&self) -> Result<MasterKey, CliError> {
        new_key(self)
    }
}

fn new_key(args: &NewMasterKeyArgs) -> Result<MasterKey, CliError> {
    let mut sources = Vec::new();
    if let Some(path) = &args.new_master_key_file {
        sources.push(MasterKeySource::File(path.clone()));
    }
    if let Some(command) = &args.new_master_key_command {
        sources.push(MasterKeySource::Command(command.clone()));
    }
    if std::env::var_os(NEW_MASTER_KEY_ENV).is_some_and(|v| !v.is_empty()) {
        sources.push(MasterKeySource::Env(NEW_MASTER_KEY_ENV.to_owned()));
    }
    match sources.as_slice() {
        [source] => source.load().map_err(|e| store::key_error(&e)),
        [] => Err(CliError::Refused(format!(
            "give the new master key with --new-master-key-file, {NEW_MASTER_KEY_ENV} or \
             --new-master-key-command"
        ))),
        _ => Err(CliError::Refused(format!(
            "the new master key is given more than once; give exactly one of \
             --new-master-key-file, --new-master-key-command and {NEW_MASTER_KEY_ENV}"
        ))),
    }
}

fn rotate_master_key(args: &RotateMasterArgs) -> Result<(), CliError> {
    let old = current_key(&args.dir)?;
    let new = new_key(&args.new)?;
    let dir = &args.dir.data_dir;
    rotate_master(dir, &old, &new).map_err(|e| store::store_error(dir, e))?;
    say(&format!(
        "the data keys of {} are now wrapped by master key {} (was {}); start the server \
         with the new key",
        dir.display(),
        new.fingerprint(),
        old.fingerprint()
    ))?;
    let Some(audit_dir) = &args.audit_dir else {
        return Ok(());
    };
    let summary = crate::audit::rewrap_segment_keys(audit_dir, &old, &new).map_err(|err| {
        CliError::Failed(format!(
            "the store's keys were rotated, but not the audit log's: {err}; finish with \
             `testudo audit rewrap {}` and both keys",
            audit_dir.display()
        ))
    })?;
    say(&summary)
}

/// How often a waiting `rotate-data` looks at the rotation's progress.
const WAIT_POLL: Duration = Duration::from_millis(500);
/// After this long without progress, a waiting `rotate-data` says so (and keeps waiting).
const STALL_HINT: Duration = Duration::from_secs(60);

fn rotate_data_key(args: &RotateDataArgs) -> Result<(), CliError> {
    let master = current_key(&args.dir)?;
    let dir = &args.dir.data_dir;
    if data_file_in_use(dir).map_err(|e| store::store_error(dir, e))? {
        return rotate_data_online(args, &master);
    }
    let mut last_tenth = 0;
    let mut progress = |done: u64, total: u64| {
        let tenth = done.saturating_mul(10) / total.max(1);
        if tenth > last_tenth {
            last_tenth = tenth;
            eprintln!("testudo: re-encrypted {done} of {total} blocks");
        }
    };
    let report =
        rotate_data(dir, &master, &mut progress).map_err(|e| store::store_error(dir, e))?;
    say(&format!(
        "re-encrypted {} blocks of {} under data key {} (was {}; {} blocks never written)",
        report.blocks,
        dir.display(),
        report.new_key_id,
        report.old_key_id,
        report.unwritten
    ))
}

fn rotate_data_online(args: &RotateDataArgs, master: &MasterKey) -> Result<(), CliError> {
    let dir = &args.dir.data_dir;
    let given = master.fingerprint().to_string();
    if let Some(in_use) = store::key_in_use(dir)
        && in_use != given
    {
        // After `rotate-master` the running server still holds the old key: it could not
        // unwrap a data key wrapped under the new one, and the rotation would never start.
        return Err(CliError::Refused(format!(
            "the running server opened {} with master key {in_use}, but the keyring is now \
             under master key {given} (after `testudo keys rotate-master`): restart the \
             server with the new master key, then run this again",
            dir.display()
        )));
    }
    let status = request_rotation(dir, master).map_err(|e| store::store_error(dir, e))?;
    let RotationStatus { from, to, .. } = status;
    eprintln!(
        "testudo: the server is running; it re-encrypts {} from data key {from} to data key \
         {to} in the background",
        dir.display()
    );
    if args.no_wait {
        return say(&format!(
            "requested the re-encryption of {} under data key {to} (was {from}); the server \
             drops the old key when it is done",
            dir.display()
        ));
    }
    let mut last_tenth = 0;
    let mut last_done = status.done;
    let mut progressed = Instant::now();
    let mut hinted = false;
    while let Some(now) = rotation_status(dir).map_err(|e| store::store_error(dir, e))? {
        if !data_file_in_use(dir).map_err(|e| store::store_error(dir, e))? {
            // Stopped meanwhile: it may have finished just before.
            if rotation_status(dir)
                .map_err(|e| store::store_error(dir, e))?
                .is_none()
            {
                break;
            }
            return Err(CliError::Failed(format!(
                "the server stopped before it finished re-encrypting {}: the rotation resumes \
                 when it starts again (or run `testudo keys rotate-data` with the server \
                 stopped to finish it now)",
                dir.display()
            )));
        }
        if now.done != last_done {
            last_done = now.done;
            progressed = Instant::now();
        }
        let tenth = now.done.saturating_mul(10) / now.total.max(1);
        if tenth > last_tenth {
            last_tenth = tenth;
            eprintln!("testudo: re-encrypted {} of {} blocks", now.done, now.total);
        }
        if !hinted && progressed.elapsed() > STALL_HINT {
            hinted = true;
            eprintln!(
                "testudo: no progress for {} s; the server's log says why (it retries); still \
                 waiting (Ctrl-C stops waiting, not the rotation)",
                STALL_HINT.as_secs()
            );
        }
        std::thread::sleep(WAIT_POLL);
    }
    say(&format!(
        "re-encrypted {} under data key {to} (was {from}) while the server ran; the old key is \
         gone from the keyring",
        dir.display()
    ))
}

fn verify(args: &StoreDir) -> Result<(), CliError> {
    let master = current_key(args)?;
    let dir = &args.data_dir;
    let report = verify_store(dir, &master).map_err(|e| store::store_error(dir, e))?;
    if report.failed_count > 0 {
        return Err(CliError::Failed(format!(
            "{} of {} blocks of {} fail their integrity check (blocks {:?}{})",
            report.failed_count,
            report.blocks,
            dir.display(),
            report.failed,
            if report.failed_count > report.failed.len() as u64 {
                ", …"
            } else {
                ""
            }
        )));
    }
    let db_keys = match verify_db_keys(dir, &master).map_err(|e| store::key_error(&e))? {
        Some((keys, shredded)) => {
            format!("; {keys} per-database keys unwrap ({shredded} shredded)")
        }
        None => "; no per-database keys".to_owned(),
    };
    say(&format!(
        "all {} blocks of {} authenticate ({} never written){db_keys}",
        report.blocks,
        dir.display(),
        report.unwritten
    ))
}
