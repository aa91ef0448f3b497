//! Which backend gets a request: pure functions over headers and backend state, no I/O.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use hyper::header::{HeaderMap, COOKIE};

use crate::backend::BackendState;

/// The route a request is sticky to, read in this order: the session cookie
/// (`JSESSIONID=<id>.<route>`), the session header, then a `;jsessionid=<id>.<route>` path
/// parameter (Tomcat's URL rewriting). The route is what follows the id's first '.', as in
/// mod_jk. Returns `None` for requests without a routed session.
pub(crate) fn session_route<'a>(
    headers: &'a HeaderMap,
    path: &'a str,
    cookie_name: &str,
    session_header: &str,
) -> Option<&'a str> {
    let from_cookie = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| cookie_route(v, cookie_name));
    from_cookie
        .or_else(|| {
            headers
                .get(session_header)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| route_of(v.trim()))
        })
        .or_else(|| path_param_route(path, cookie_name))
}

/// The route of the first `cookie_name` cookie with one in a `Cookie` header value.
pub(crate) fn cookie_route<'a>(value: &'a str, cookie_name: &str) -> Option<&'a str> {
    value
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == cookie_name)
        .find_map(|(_, value)| route_of(value.trim_matches('"')))
}

pub(crate) fn route_of(session_id: &str) -> Option<&str> {
    session_id
        .split_once('.')
        .map(|(_, route)| route)
        .filter(|r| !r.is_empty())
}

pub(crate) fn path_param_route<'a>(path: &'a str, cookie_name: &str) -> Option<&'a str> {
    let start = path.find(';')?;
    path[start..]
        .split(';')
        .filter_map(|p| p.split_once('='))
        .find(|(name, _)| name.eq_ignore_ascii_case(cookie_name))
        .and_then(|(_, value)| route_of(value.split(['/', '?']).next().unwrap_or(value)))
}

/// Picks the backend for the next attempt of a request, or `None` when every backend was
/// already tried. `tried` holds routes already attempted for this request; `rr` is a
/// round-robin counter that rotates the starting point among equally loaded backends.
///
/// Order: the sticky backend if it is up (draining or not: its sessions stay with it until
/// it is gone); else the least-outstanding up, non-draining backend (new sessions and
/// failover); else an up but draining one (better than refusing); else, when everything is
/// marked down, any untried one, because a probe may be stale and a refused connection is
/// cheap to detect.
pub(crate) fn choose(
    backends: &[Arc<BackendState>],
    sticky: Option<&str>,
    tried: &[&str],
    rr: usize,
) -> Option<Arc<BackendState>> {
    let untried = |b: &&Arc<BackendState>| !tried.contains(&b.route.as_str());
    if let Some(route) = sticky {
        if let Some(b) = backends
            .iter()
            .filter(untried)
            .find(|b| b.route == route && b.is_up())
        {
            return Some(b.clone());
        }
    }
    least_outstanding(backends, rr, |b| {
        untried(&b) && b.is_up() && !b.is_draining()
    })
    .or_else(|| least_outstanding(backends, rr, |b| untried(&b) && b.is_up()))
    .or_else(|| least_outstanding(backends, rr, |b| untried(&b)))
}

fn least_outstanding(
    backends: &[Arc<BackendState>],
    rr: usize,
    eligible: impl Fn(&Arc<BackendState>) -> bool,
) -> Option<Arc<BackendState>> {
    // Rotate among the eligible ones only, so a draining or dead node does not skew the
    // spread towards its neighbour in the list.
    let count = backends.iter().filter(|b| eligible(b)).count();
    if count == 0 {
        return None;
    }
    let start = rr % count;
    let rotated = || backends.iter().filter(|b| eligible(b));
    rotated()
        .skip(start)
        .chain(rotated().take(start))
        // min_by_key keeps the first minimum, so ties go to the round-robin start.
        .min_by_key(|b| b.outstanding.load(Ordering::Relaxed))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Backend, BalancerConfig};
    use hyper::header::HeaderValue;

    fn backends(n: usize) -> Vec<Arc<BackendState>> {
        let list: Vec<Backend> = (1..=n)
            .map(|i| Backend::new(format!("node{i}"), format!("127.0.0.1:{}", 18080 + i)))
            .collect();
        let targets = BalancerConfig::default()
            .targets(&list)
            .expect("valid test backends");
        targets
            .into_iter()
            .map(|t| Arc::new(BackendState::new(t)))
            .collect()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("test header"));
        }
        h
    }

    #[test]
    fn route_comes_from_cookie_header_or_path() {
        let h = headers(&[("cookie", "a=b; JSESSIONID=\"ABC.node2\"; c=d")]);
        assert_eq!(
            session_route(&h, "/", "JSESSIONID", "x-shoal-session"),
            Some("node2")
        );
        let h = headers(&[("x-shoal-session", "ABC.node3")]);
        assert_eq!(
            session_route(&h, "/", "JSESSIONID", "x-shoal-session"),
            Some("node3")
        );
        let h = HeaderMap::new();
        let path = "/app/counter;jsessionid=ABC.node1?x=1";
        assert_eq!(
            session_route(&h, path, "JSESSIONID", "x-shoal-session"),
            Some("node1")
        );
        let h = headers(&[
            ("cookie", "JSESSIONID=ABC"),
            ("cookie", "JSESSIONID=DEF.node1"),
        ]);
        assert_eq!(
            session_route(&h, "/", "JSESSIONID", "x-shoal-session"),
            Some("node1")
        );
        let h = headers(&[("cookie", "JSESSIONID=ABC.; OTHER=x.node2")]);
        assert_eq!(
            session_route(&h, "/", "JSESSIONID", "x-shoal-session"),
            None
        );
    }

    #[test]
    fn sticky_wins_while_up_even_when_draining() {
        let b = backends(3);
        b[1].set_draining(true);
        let got = choose(&b, Some("node2"), &[], 0).map(|b| b.route.clone());
        assert_eq!(got.as_deref(), Some("node2"));
        b[1].mark_down("test".into());
        let got = choose(&b, Some("node2"), &[], 0).map(|b| b.route.clone());
        assert_ne!(got.as_deref(), Some("node2"));
    }

    #[test]
    fn new_sessions_rotate_and_skip_draining_and_tried() {
        let b = backends(3);
        b[0].set_draining(true);
        let picks: Vec<String> = (0..4)
            .filter_map(|rr| choose(&b, None, &[], rr).map(|b| b.route.clone()))
            .collect();
        assert_eq!(picks, ["node2", "node3", "node2", "node3"]);
        let got = choose(&b, None, &["node2", "node3"], 0).map(|b| b.route.clone());
        assert_eq!(
            got.as_deref(),
            Some("node1"),
            "draining is a last resort, not refused"
        );
        assert!(choose(&b, None, &["node1", "node2", "node3"], 0).is_none());
    }

    #[test]
    fn least_outstanding_beats_rotation_and_all_down_still_tries() {
        let b = backends(3);
        b[0].outstanding.store(5, Ordering::Relaxed);
        b[1].outstanding.store(1, Ordering::Relaxed);
        let got = choose(&b, None, &[], 0).map(|b| b.route.clone());
        assert_eq!(got.as_deref(), Some("node3"));
        for x in &b {
            x.mark_down("test".into());
        }
        assert!(choose(&b, Some("node1"), &["node3"], 0).is_some());
    }
}
