//! Password hashing: Argon2id, run on the blocking pool, for accounts and for shared links.
//!
//! Security Invariant: a password is kept only as its Argon2id hash.

use crate::StoreError;
use crate::meta::OpError;

pub(crate) fn hash_password(password: &str) -> Result<String, OpError> {
    use argon2::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| OpError::Invalid(format!("password hashing failed: {e}")))
}

pub(crate) fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::PasswordVerifier;
    argon2::PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Runs Argon2 off the async worker threads: it is deliberately slow.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("password hashing does not panic")
}

/// Hashes a password with Argon2id on the blocking pool.
pub(crate) async fn hash_password_blocking(password: String) -> Result<String, StoreError> {
    blocking(move || hash_password(&password))
        .await
        .map_err(|e| StoreError::Invalid(e.to_string()))
}

/// Checks a password against an Argon2id hash on the blocking pool.
pub(crate) async fn verify_password_blocking(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    blocking(move || verify_password(&password, &hash)).await
}
