//! Scoped secrets: reading `<secret>[:<db/path>]:<scope>` from a bearer value, and the rule
//! deciding whether a base secret may ask for a scope (`may_request`).
//!
//! A scope is one of `admin`, `server`, `server-readonly`, `client`, `@role/<Role>` or
//! `@doc/<Collection>/<id>`. The path names child databases, one valid database name per
//! segment.
//!
//! **Invariants:**
//! - A scope can only narrow what its base secret may do, never widen it: a path or a role
//!   needs an admin base; a document identity needs an admin or server base; a token may
//!   carry no scope at all.
//! - Anything malformed or unknown is an error, never ignored (Fauna falls back to the
//!   unscoped secret; we refuse, so a typo cannot silently run with more rights).
//! - Errors never repeat the bearer text: it holds a secret.
//! - A base secret never contains `:`. Issued secrets cannot (URL-safe base64); the
//!   operator's root secret must not either, which [`is_plain_secret`] checks.

/// The longest bearer value read at all; longer values are refused before any parsing.
pub const MAX_BEARER_LEN: usize = 4096;
/// The deepest database path a scope may name.
pub const MAX_PATH_SEGMENTS: usize = 64;
/// The longest database, collection or role name in a scope.
pub const MAX_NAME_LEN: usize = 255;

/// What a scoped secret asks to run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRequest {
    /// Child databases below the base secret's database, outermost first; empty for the
    /// base secret's own database.
    pub path: Vec<String>,
    pub role: ScopeRole,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeRole {
    Admin,
    Server,
    ServerReadOnly,
    Client,
    /// A user-defined role, by name.
    Role(String),
    /// Run as this identity document, with its membership roles.
    Doc {
        collection: String,
        id: u64,
    },
}

/// The rights of the secret a scope is appended to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseRole {
    /// An admin key, or the root secret.
    Admin,
    Server,
    ServerReadOnly,
    Client,
    /// A key with a user-defined role.
    Custom,
    /// A token (from `login` or `Token.create`).
    Token,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("the secret is empty")]
    EmptySecret,
    #[error("the secret is longer than {MAX_BEARER_LEN} bytes")]
    TooLong,
    #[error("a scoped secret has at most a database path and a scope after the secret")]
    TooManyParts,
    #[error("the scope is empty")]
    EmptyScope,
    #[error(
        "unknown scope; expected admin, server, server-readonly, client, @role/<name> or @doc/<collection>/<id>"
    )]
    UnknownScope,
    #[error("the database path is empty")]
    EmptyPath,
    #[error("the database path names more than {MAX_PATH_SEGMENTS} databases")]
    PathTooDeep,
    #[error("segment {position} of the database path is not a valid database name")]
    InvalidDatabaseName { position: usize },
    #[error("@role/ must be followed by a valid role name")]
    InvalidRoleName,
    #[error("@doc/ must be followed by a valid collection name, `/` and a decimal document id")]
    InvalidDocScope,
}

/// Splits a bearer value into its base secret and the scope it asks for, if any.
pub fn parse_bearer(text: &str) -> Result<(&str, Option<ScopeRequest>), ScopeError> {
    if text.len() > MAX_BEARER_LEN {
        return Err(ScopeError::TooLong);
    }
    let mut parts = text.split(':');
    let base = parts.next().unwrap_or_default();
    if base.is_empty() {
        return Err(ScopeError::EmptySecret);
    }
    let (path, scope) = match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => return Ok((base, None)),
        (Some(scope), None, _) => (None, scope),
        (Some(path), Some(scope), None) => (Some(path), scope),
        (Some(_), Some(_), Some(_)) => return Err(ScopeError::TooManyParts),
    };
    let path = match path {
        Some(path) => parse_path(path)?,
        None => Vec::new(),
    };
    let role = parse_scope(scope)?;
    Ok((base, Some(ScopeRequest { path, role })))
}

fn parse_path(text: &str) -> Result<Vec<String>, ScopeError> {
    if text.is_empty() {
        return Err(ScopeError::EmptyPath);
    }
    let mut path = Vec::new();
    for (position, segment) in text.split('/').enumerate() {
        if position >= MAX_PATH_SEGMENTS {
            return Err(ScopeError::PathTooDeep);
        }
        if !is_name(segment) {
            return Err(ScopeError::InvalidDatabaseName { position });
        }
        path.push(segment.to_owned());
    }
    Ok(path)
}

fn parse_scope(text: &str) -> Result<ScopeRole, ScopeError> {
    match text {
        "" => Err(ScopeError::EmptyScope),
        "admin" => Ok(ScopeRole::Admin),
        "server" => Ok(ScopeRole::Server),
        "server-readonly" => Ok(ScopeRole::ServerReadOnly),
        "client" => Ok(ScopeRole::Client),
        _ => {
            if let Some(name) = text.strip_prefix("@role/") {
                return if is_name(name) {
                    Ok(ScopeRole::Role(name.to_owned()))
                } else {
                    Err(ScopeError::InvalidRoleName)
                };
            }
            if let Some(rest) = text.strip_prefix("@doc/") {
                return parse_doc(rest).ok_or(ScopeError::InvalidDocScope);
            }
            Err(ScopeError::UnknownScope)
        }
    }
}

fn parse_doc(text: &str) -> Option<ScopeRole> {
    let (collection, id) = text.split_once('/')?;
    if !is_name(collection) || !is_canonical_decimal(id) {
        return None;
    }
    Some(ScopeRole::Doc {
        collection: collection.to_owned(),
        id: id.parse().ok()?,
    })
}

/// `[A-Za-z_][A-Za-z0-9_]*`, at most `MAX_NAME_LEN` bytes: ASCII only, so no look-alike or
/// encoded form of `.`, `/` or `:` gets through.
fn is_name(text: &str) -> bool {
    let mut bytes = text.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    first_ok && text.len() <= MAX_NAME_LEN && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Digits only, no sign and no leading zero, so each id has exactly one spelling.
fn is_canonical_decimal(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
}

/// May a secret with rights `base` ask for `request`? Following Fauna: a database path or
/// any role scope needs an admin base (so a server key asking for `server-readonly` is
/// refused); a document identity in the base's own database needs an admin or server base;
/// a token may carry no scope.
pub fn may_request(base: BaseRole, request: &ScopeRequest) -> bool {
    match base {
        BaseRole::Admin => true,
        BaseRole::Server => {
            request.path.is_empty() && matches!(request.role, ScopeRole::Doc { .. })
        }
        BaseRole::ServerReadOnly | BaseRole::Client | BaseRole::Custom | BaseRole::Token => false,
    }
}

/// Could `text` be used as a base secret: non-empty, printable ASCII, no whitespace and no
/// `:`? The operator's root secret must pass this, or a scope appended to it would be
/// misread.
pub fn is_plain_secret(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_BEARER_LEN
        && text.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> ScopeRequest {
        parse_bearer(text).unwrap().1.unwrap()
    }

    fn err(text: &str) -> ScopeError {
        parse_bearer(text).unwrap_err()
    }

    #[test]
    fn a_bare_secret_has_no_scope() {
        assert_eq!(parse_bearer("fnKabc").unwrap(), ("fnKabc", None));
    }

    #[test]
    fn each_scope_word_is_read() {
        let cases = [
            ("admin", ScopeRole::Admin),
            ("server", ScopeRole::Server),
            ("server-readonly", ScopeRole::ServerReadOnly),
            ("client", ScopeRole::Client),
            ("@role/Auditor_2", ScopeRole::Role("Auditor_2".into())),
            (
                "@doc/Users/123",
                ScopeRole::Doc {
                    collection: "Users".into(),
                    id: 123,
                },
            ),
        ];
        for (scope, role) in cases {
            let text = format!("s:{scope}");
            let (base, req) = parse_bearer(&text).unwrap();
            assert_eq!(base, "s");
            assert_eq!(req, Some(ScopeRequest { path: vec![], role }));
        }
    }

    #[test]
    fn a_database_path_is_read_outermost_first() {
        let req = request("s:acme/eu_west/_tenant7:server");
        assert_eq!(req.path, ["acme", "eu_west", "_tenant7"]);
        assert_eq!(req.role, ScopeRole::Server);
    }

    #[test]
    fn a_path_of_64_databases_is_accepted_and_65_is_refused() {
        let path = vec!["d"; 64].join("/");
        assert_eq!(request(&format!("s:{path}:admin")).path.len(), 64);
        assert_eq!(err(&format!("s:{path}/d:admin")), ScopeError::PathTooDeep);
    }

    #[test]
    fn bad_path_segments_are_refused_with_their_position() {
        let cases = [
            ("s:/a:admin", 0),
            ("s:a/:admin", 1),
            ("s:a//b:admin", 1),
            ("s:./a:admin", 0),
            ("s:a/..:admin", 1),
            ("s:a%2Fb:admin", 0),
            ("s:a/1db:admin", 1),
            ("s:a b:admin", 0),
            ("s:db-1:admin", 0),
            ("s:dé:admin", 0),
            ("s:a\u{2215}b:admin", 0),
            ("s:\u{FF41}:admin", 0),
        ];
        for (text, position) in cases {
            assert_eq!(
                err(text),
                ScopeError::InvalidDatabaseName { position },
                "{text}"
            );
        }
        assert_eq!(err("s::admin"), ScopeError::EmptyPath);
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert!(matches!(
            err(&format!("s:{long}:admin")),
            ScopeError::InvalidDatabaseName { .. }
        ));
    }

    #[test]
    fn unknown_or_malformed_scopes_are_errors_not_ignored() {
        assert_eq!(err("s:"), ScopeError::EmptyScope);
        assert_eq!(err("s:a:"), ScopeError::EmptyScope);
        for scope in ["Admin", "admin ", "readonly", "@role", "@Role/x", "doc/C/1"] {
            assert_eq!(
                err(&format!("s:{scope}")),
                ScopeError::UnknownScope,
                "{scope}"
            );
        }
        for scope in ["@role/", "@role/1x", "@role/a/b", "@role/a-b"] {
            assert_eq!(
                err(&format!("s:{scope}")),
                ScopeError::InvalidRoleName,
                "{scope}"
            );
        }
        for scope in [
            "@doc/",
            "@doc/Users",
            "@doc/Users/",
            "@doc//1",
            "@doc/Users/x",
            "@doc/Users/-1",
            "@doc/Users/+1",
            "@doc/Users/01",
            "@doc/Users/1/2",
            "@doc/collections/Users/1",
            "@doc/Users/18446744073709551616",
        ] {
            assert_eq!(
                err(&format!("s:{scope}")),
                ScopeError::InvalidDocScope,
                "{scope}"
            );
        }
        assert_eq!(err("s:a:b:admin"), ScopeError::TooManyParts);
    }

    #[test]
    fn document_ids_take_their_full_range() {
        let max = request("s:@doc/C/18446744073709551615");
        assert_eq!(
            max.role,
            ScopeRole::Doc {
                collection: "C".into(),
                id: u64::MAX
            }
        );
        assert!(matches!(
            request("s:@doc/C/0").role,
            ScopeRole::Doc { id: 0, .. }
        ));
    }

    #[test]
    fn an_empty_or_oversized_bearer_is_refused() {
        assert_eq!(err(""), ScopeError::EmptySecret);
        assert_eq!(err(":admin"), ScopeError::EmptySecret);
        assert_eq!(err(&"a".repeat(MAX_BEARER_LEN + 1)), ScopeError::TooLong);
    }

    #[test]
    fn errors_never_repeat_the_secret() {
        let secret = "fnKverysecretvalue";
        for suffix in [":x", ":a/../b:admin", ":@doc/U/x", ":a:b:c", ":%:admin"] {
            let message = err(&format!("{secret}{suffix}")).to_string();
            assert!(!message.contains("verysecret"), "{message}");
        }
    }

    fn all_requests() -> Vec<ScopeRequest> {
        let roles = [
            ScopeRole::Admin,
            ScopeRole::Server,
            ScopeRole::ServerReadOnly,
            ScopeRole::Client,
            ScopeRole::Role("R".into()),
            ScopeRole::Doc {
                collection: "U".into(),
                id: 1,
            },
        ];
        let mut out = Vec::new();
        for role in roles {
            for path in [vec![], vec!["child".to_owned()]] {
                out.push(ScopeRequest {
                    path,
                    role: role.clone(),
                });
            }
        }
        out
    }

    #[test]
    fn an_admin_base_may_request_any_scope_and_path() {
        for req in all_requests() {
            assert!(may_request(BaseRole::Admin, &req), "{req:?}");
        }
    }

    #[test]
    fn a_server_base_may_only_impersonate_a_document_in_its_own_database() {
        for req in all_requests() {
            let allowed = req.path.is_empty() && matches!(req.role, ScopeRole::Doc { .. });
            assert_eq!(may_request(BaseRole::Server, &req), allowed, "{req:?}");
        }
    }

    #[test]
    fn a_server_base_may_not_request_server_readonly() {
        let req = request("s:server-readonly");
        assert!(!may_request(BaseRole::Server, &req));
    }

    #[test]
    fn other_bases_and_tokens_may_request_no_scope_at_all() {
        for base in [
            BaseRole::ServerReadOnly,
            BaseRole::Client,
            BaseRole::Custom,
            BaseRole::Token,
        ] {
            for req in all_requests() {
                assert!(!may_request(base, &req), "{base:?} {req:?}");
            }
        }
    }

    #[test]
    fn plain_secrets_have_no_colon_space_or_control_characters() {
        assert!(is_plain_secret("fnR_abc-DEF123"));
        for bad in ["", "a:b", "a b", "a\tb", "é", "a\nb"] {
            assert!(!is_plain_secret(bad), "{bad:?}");
        }
    }
}
