//! Small helpers shared by plugins (no bindings involved, so they are unit-testable on
//! the build machine).

/// Request header marking a balancer's health probe (`shoal_cluster::roles::PROBE_HEADER`
/// on the host side).
pub const PROBE_HEADER: &str = "x-shoal-probe";

/// First header named `name` (ASCII case-insensitive).
pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// First value of `name` in a query string `a=1&b=2` (not percent-decoded).
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

/// Matches `text` against a glob where `*` is any run of bytes and `?` one byte.
/// Works on bytes without allocating (it runs on every request of a URL filter); paths
/// are ASCII in practice, and a `?` against a multi-byte character matches one of its bytes.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Position of the last `*` and the text index it is currently absorbing up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.css", "/app/site.css"));
        assert!(glob_match("/static/*", "/static/a/b.png"));
        assert!(glob_match("/a?c", "/abc"));
        assert!(!glob_match("*.css", "/app/site.js"));
        assert!(!glob_match("/a?c", "/ac"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn query_and_headers() {
        assert_eq!(query_param("key=k1&size=10", "size"), Some("10"));
        assert_eq!(query_param("flag&x=1", "flag"), Some(""));
        assert_eq!(query_param("x=1", "y"), None);
        let h = vec![("Authorization".to_string(), "Bearer t".to_string())];
        assert_eq!(find_header(&h, "authorization"), Some("Bearer t"));
    }
}
