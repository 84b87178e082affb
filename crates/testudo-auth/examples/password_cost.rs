//! Measures what one password hash and one verification cost on this machine, to size login
//! throttling and the blocking pool: `cargo run --release -p testudo-auth --example password_cost`.

use std::time::{Duration, Instant};

use testudo_auth::{hash_password, verify_password};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const RUNS: u32 = 20;
    let password = "violet-harbour-tractor";
    let phc = hash_password(password)?;
    let mut hashes = Vec::new();
    let mut verifies = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        hash_password(password)?;
        hashes.push(start.elapsed());
        let start = Instant::now();
        let ok = verify_password(password, &phc);
        verifies.push(start.elapsed());
        if !ok {
            return Err("a fresh hash did not verify".into());
        }
    }
    println!("hash:   median {:?} over {RUNS} runs", median(&mut hashes));
    println!(
        "verify: median {:?} over {RUNS} runs",
        median(&mut verifies)
    );
    Ok(())
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}
