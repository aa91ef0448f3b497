//! The node file being written by the import: tables of keys, each key with the Tomcat
//! attribute it came from and, when its meaning changed, how; plus what has no equivalent.
use std::fmt::Write;

/// One `key = value` with where it came from.
struct Line {
    key: String,
    /// A TOML literal.
    value: String,
    /// The Tomcat element and attribute, e.g. `<Receiver port>`.
    from: String,
    /// How the meaning differs from Tomcat's, if it does.
    changed: Option<String>,
}

struct Table {
    /// `cluster.receiver`, `http.contexts.session`, …
    path: String,
    /// `[[path]]` rather than `[path]`.
    array: bool,
    lines: Vec<Line>,
}

/// The imported file under construction.
#[derive(Default)]
pub struct Out {
    tables: Vec<Table>,
    /// Comment lines under the file's title (the sources, what to do next).
    pub header: Vec<String>,
    /// `<Element attr>: why it has no equivalent`.
    pub unmapped: Vec<String>,
    /// Unknown class names and other things the user must look at (also on stderr).
    pub warnings: Vec<String>,
}

impl Out {
    /// Sets `key` in table `path`: the one under the last `[[…]]` entry it belongs to (a
    /// context's `session` table), created at the end if there is none yet.
    pub fn set(
        &mut self,
        path: &str,
        key: &str,
        value: impl Into<toml::Value>,
        from: &str,
        changed: Option<&str>,
    ) {
        let owner = self
            .tables
            .iter()
            .rposition(|t| t.array && path.starts_with(&format!("{}.", t.path)))
            .map_or(0, |i| i + 1);
        let found = self.tables[owner..]
            .iter()
            .rposition(|t| t.path == path && !t.array)
            .map(|i| i + owner);
        let i = match found {
            Some(i) => i,
            None => {
                self.table(path);
                self.tables.len() - 1
            }
        };
        self.set_at(i, key, value, from, changed);
    }

    /// Adds an empty `[path]` table at the end (tables are written in the order made).
    pub fn table(&mut self, path: &str) {
        self.tables.push(Table {
            path: path.into(),
            array: false,
            lines: Vec::new(),
        });
    }

    /// Adds a `[[path]]` entry at the end; returns its index for [`Out::set_at`].
    pub fn push_array(&mut self, path: &str) -> usize {
        self.tables.push(Table {
            path: path.into(),
            array: true,
            lines: Vec::new(),
        });
        self.tables.len() - 1
    }

    /// Sets `key` in table `i`, replacing an earlier value of the same key.
    pub fn set_at(
        &mut self,
        i: usize,
        key: &str,
        value: impl Into<toml::Value>,
        from: &str,
        changed: Option<&str>,
    ) {
        let line = Line {
            key: key.into(),
            value: value.into().to_string(),
            from: from.into(),
            changed: changed.map(str::to_owned),
        };
        let lines = &mut self.tables[i].lines;
        match lines.iter_mut().find(|l| l.key == key) {
            Some(l) => *l = line,
            None => lines.push(line),
        }
    }

    /// Whether the last table `path` (the current context's) has `key` set.
    pub fn has(&self, path: &str, key: &str) -> bool {
        self.tables
            .iter()
            .rfind(|t| t.path == path)
            .is_some_and(|t| t.lines.iter().any(|l| l.key == key))
    }

    pub fn no_equivalent(&mut self, what: &str, why: &str) {
        self.unmapped.push(format!("{what}: {why}"));
    }

    pub fn warn(&mut self, w: String) {
        self.warnings.push(w);
    }

    /// The node file. Tables are grouped `[cluster…]`, `[http…]`, `[farm]` (a context's
    /// sub-tables follow it); empty plain tables are left out.
    pub fn render(&self) -> String {
        let rank = |p: &str| match p.split('.').next() {
            Some("cluster") => 0,
            Some("http") => 1,
            _ => 2,
        };
        let mut order: Vec<&Table> = self.tables.iter().collect();
        order.sort_by_key(|t| rank(&t.path));
        let mut s = String::new();
        for h in &self.header {
            let _ = writeln!(s, "# {h}");
        }
        for t in order {
            if t.lines.is_empty() && !t.array {
                continue;
            }
            s.push('\n');
            let _ = match t.array {
                true => writeln!(s, "[[{}]]", t.path),
                false => writeln!(s, "[{}]", t.path),
            };
            for l in &t.lines {
                if let Some(c) = &l.changed {
                    let _ = writeln!(s, "# CHANGED: {c}");
                }
                let kv = format!("{} = {}", l.key, l.value);
                let _ = writeln!(s, "{kv:<44} # {}", l.from);
            }
        }
        if !self.unmapped.is_empty() {
            s.push_str("\n# Not imported: no equivalent in shoal\n");
            for u in &self.unmapped {
                let _ = writeln!(s, "# - {u}");
            }
        }
        if !self.warnings.is_empty() {
            s.push_str("\n# Warnings\n");
            for w in &self.warnings {
                let _ = writeln!(s, "# - {w}");
            }
        }
        s
    }
}
