//! What differs between SQLite, PostgreSQL and MySQL/MariaDB in the statements this store
//! runs: quoting, placeholders, column types, a 64-bit cast, and how to list a table's
//! columns. Everything else is one SQL text for all three.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

impl Dialect {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
        }
    }

    /// Quote a validated identifier.
    pub(crate) fn quote(self, ident: &str) -> String {
        match self {
            Dialect::MySql => format!("`{ident}`"),
            _ => format!("\"{ident}\""),
        }
    }

    /// Statements are written with `?`; PostgreSQL numbers them (`$1`, `$2`, …). No `?`
    /// can come from a name: names are validated.
    pub(crate) fn placeholders(self, sql: &str) -> String {
        if self != Dialect::Postgres {
            return sql.to_owned();
        }
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push_str(&format!("${n}"));
            } else {
                out.push(c);
            }
        }
        out
    }

    /// `expr` as a signed 64-bit integer (Tomcat's `max_inactive` is an `int`, and
    /// `int * 1000` overflows in PostgreSQL).
    pub(crate) fn as_i64(self, expr: &str) -> String {
        match self {
            Dialect::MySql => format!("CAST({expr} AS SIGNED)"),
            _ => format!("CAST({expr} AS BIGINT)"),
        }
    }

    pub(crate) fn blob_type(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BLOB",
            Dialect::Postgres => "BYTEA",
            Dialect::MySql => "LONGBLOB",
        }
    }

    /// Table options after `CREATE TABLE (…)`: MySQL compares keys byte for byte (its
    /// default collation would make `abc` and `ABC` one session).
    pub(crate) fn table_options(self) -> &'static str {
        match self {
            Dialect::MySql => " DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
            _ => "",
        }
    }

    /// A query with one bound parameter (the table name) listing its column names.
    pub(crate) fn columns_query(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SELECT name FROM pragma_table_info(?)",
            Dialect::Postgres => {
                "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1"
            }
            Dialect::MySql => {
                "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = ?"
            }
        }
    }

    /// Whether two column names are the same column (PostgreSQL keeps case when quoted;
    /// SQLite and MySQL compare column names without case).
    pub(crate) fn same_column(self, a: &str, b: &str) -> bool {
        match self {
            Dialect::Postgres => a == b,
            _ => a.eq_ignore_ascii_case(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Dialect;

    #[test]
    fn postgres_numbers_placeholders() {
        assert_eq!(
            Dialect::Postgres.placeholders("a = ? AND b = ?"),
            "a = $1 AND b = $2"
        );
        assert_eq!(Dialect::MySql.placeholders("a = ?"), "a = ?");
    }
}
