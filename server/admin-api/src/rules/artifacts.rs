//! Which deployment artifacts a node accepts before looking inside them.
use crate::backend::BackendError;

/// Longest artifact name: it becomes a plugin's name on the node.
pub const MAX_ARTIFACT_NAME: usize = 64;

/// Checks an artifact's name: 1..=64 letters, digits, `.`, `_`, `-`, not starting with `.`. The route answers 400
/// with this message; a backend that is called directly answers `Invalid`.
pub fn check_artifact_name(name: &str) -> Result<(), BackendError> {
    let usable = !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= MAX_ARTIFACT_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if usable {
        return Ok(());
    }
    Err(BackendError::Invalid(format!(
        "artifact name `{name}` is not usable: use 1..={MAX_ARTIFACT_NAME} letters, digits, `.`, `_` or `-`, not starting with `.` (it becomes the plugin's or file's name)"
    )))
}

/// Checks an artifact's name ([`check_artifact_name`]) and that `bytes` is not empty; the
/// error says what to send instead.
pub fn check_artifact(name: &str, bytes: &[u8]) -> Result<(), BackendError> {
    check_artifact_name(name)?;
    if bytes.is_empty() {
        return Err(BackendError::Invalid(
            "the artifact is empty: send the file as the request body".into(),
        ));
    }
    Ok(())
}
