//! Researcher accounts for the console: what a user name may be, how strong a
//! password must be, and passwords hashed with argon2id.
//!
//! Only the hash is stored (a PHC string carrying its salt and parameters,
//! so parameters can be raised later without breaking old hashes). There is no
//! default user and no default password. Checking a password against a hash
//! that does not parse is simply a failed check, never an error a caller could
//! get wrong.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest: argon2 takes any length, but a megabyte "password" is abuse.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The longest user name.
pub const MAX_NAME_CHARS: usize = 64;

/// Why a name or password was refused, or hashing failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountError {
    #[error(
        "a user name is 1 to {MAX_NAME_CHARS} letters, digits, '.', '_' or '-', such as \"ada\""
    )]
    BadName,
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    ShortPassword,
    #[error("the password must be at most {MAX_PASSWORD_BYTES} bytes")]
    LongPassword,
    #[error("could not hash the password: {0}")]
    Hashing(String),
}

/// Checks a user name: what a researcher types to log in, and what the audit
/// log shows.
pub fn check_name(name: &str) -> Result<(), AccountError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || !name.chars().all(allowed) {
        return Err(AccountError::BadName);
    }
    Ok(())
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<(), AccountError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AccountError::LongPassword);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::ShortPassword);
    }
    Ok(())
}

/// The argon2id hash of a password that passes [`check_password`], with a
/// fresh random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    check_password(password)?;
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| AccountError::Hashing(e.to_string()))
}

/// Whether `password` matches `hash`. A hash that does not parse matches
/// nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() -> Result<(), AccountError> {
        let hash = hash_password("correct horse battery")?;
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        // Salted: the same password hashes differently each time.
        assert_ne!(hash, hash_password("correct horse battery")?);
        Ok(())
    }

    #[test]
    fn garbage_hashes_match_nothing() {
        for hash in ["", "admin123", "$argon2id$", "$argon2id$v=19$m=1,t=1,p=1$$"] {
            assert!(!verify_password("admin123", hash), "{hash}");
        }
        assert!(!verify_password(
            &"x".repeat(MAX_PASSWORD_BYTES + 1),
            "$argon2id$"
        ));
    }

    #[test]
    fn names_and_passwords_are_checked() {
        assert_eq!(check_name("ada.lovelace_1-2"), Ok(()));
        for bad in [
            "",
            "ada lovelace",
            "ada;drop",
            "é",
            &"a".repeat(MAX_NAME_CHARS + 1),
        ] {
            assert_eq!(check_name(bad), Err(AccountError::BadName), "{bad:?}");
        }
        assert_eq!(check_password("short"), Err(AccountError::ShortPassword));
        assert_eq!(
            check_password(&"p".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(AccountError::LongPassword)
        );
        assert_eq!(hash_password("admin123"), Err(AccountError::ShortPassword));
    }
}
