//! Reordering (a context's pipeline, the channel's interceptors): the new order must be a
//! permutation of the current one.
use crate::backend::BackendError;

/// [`BackendError::Conflict`] unless `order` names every one of `current` exactly once;
/// `what` names an item (`pipeline stage`, `interceptor`) in the message.
pub fn check_same_names(
    current: &[&str],
    order: &[String],
    what: &str,
) -> Result<(), BackendError> {
    let mut have: Vec<&str> = current.to_vec();
    let mut want: Vec<&str> = order.iter().map(String::as_str).collect();
    have.sort_unstable();
    want.sort_unstable();
    if have == want {
        return Ok(());
    }
    Err(BackendError::Conflict(format!(
        "the new order must name every {what} exactly once; current order: [{}]",
        current.join(", ")
    )))
}
