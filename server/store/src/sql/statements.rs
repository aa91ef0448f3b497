//! Every statement the SQL store runs, built once from the dialect and the checked names.
//! Compare-and-set is in the `WHERE` clause of each write (`… AND version = ?`) and its
//! rows-affected count; an insert over an existing key fails on the primary key.
use super::dialect::Dialect;
use super::names::Names;

#[derive(Debug)]
pub(crate) struct Statements {
    /// Binds: app, id. Columns: version, valid, max_inactive, last_access, owner, data.
    pub(crate) load: String,
    /// Binds: app, id. Columns: version.
    pub(crate) version: String,
    /// Binds: app, id, version, valid, max_inactive, last_access, owner, data.
    pub(crate) insert: String,
    /// Binds: version, valid, max_inactive, last_access, owner, data, app, id, expected.
    pub(crate) update: String,
    /// Binds: last_access, last_access, app, id, version.
    pub(crate) touch: String,
    /// Binds: app, id, version.
    pub(crate) remove: String,
    /// Binds: app. Columns: id.
    pub(crate) keys: String,
    /// Binds: app. Columns: count.
    pub(crate) count: String,
    /// Binds: app, now, limit. Columns: id, version.
    pub(crate) expired: String,
    pub(crate) create_table: String,
}

impl Statements {
    pub(crate) fn new(d: Dialect, n: &Names) -> Self {
        let q = |s: &str| d.quote(s);
        let (t, id, app, valid) = (q(&n.table), q(&n.id), q(&n.app), q(&n.valid));
        let (maxi, last, data) = (q(&n.max_inactive), q(&n.last_access), q(&n.data));
        let (ver, owner) = (q(&n.version), q(&n.owner));
        let key = format!("{app} = ? AND {id} = ?");
        // Rows written by Tomcat may hold NULLs where shoal never writes one.
        let maxi64 = format!("COALESCE({}, 0)", d.as_i64(&maxi));
        let p = |sql: String| d.placeholders(&sql);
        Statements {
            load: p(format!(
                "SELECT {ver}, {valid}, {maxi64}, COALESCE({last}, 0), {owner}, {data} \
                 FROM {t} WHERE {key}"
            )),
            version: p(format!("SELECT {ver} FROM {t} WHERE {key}")),
            insert: p(format!(
                "INSERT INTO {t} ({app}, {id}, {ver}, {valid}, {maxi}, {last}, {owner}, {data}) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            )),
            update: p(format!(
                "UPDATE {t} SET {ver} = ?, {valid} = ?, {maxi} = ?, {last} = ?, {owner} = ?, \
                 {data} = ? WHERE {key} AND {ver} = ?"
            )),
            touch: p(format!(
                "UPDATE {t} SET {last} = CASE WHEN {last} < ? THEN ? ELSE {last} END \
                 WHERE {key} AND {ver} = ?"
            )),
            remove: p(format!("DELETE FROM {t} WHERE {key} AND {ver} = ?")),
            keys: p(format!("SELECT {id} FROM {t} WHERE {app} = ?")),
            count: p(format!("SELECT COUNT(*) FROM {t} WHERE {app} = ?")),
            expired: p(format!(
                "SELECT {id}, {ver} FROM {t} WHERE {app} = ? AND {maxi64} > 0 \
                 AND {last} + {maxi64} * 1000 < ? ORDER BY {last} + {maxi64} * 1000, {id} LIMIT ?"
            )),
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 {app} VARCHAR(255) NOT NULL, \
                 {id} VARCHAR(128) NOT NULL, \
                 {ver} BIGINT NOT NULL DEFAULT 0, \
                 {valid} CHAR(1) NOT NULL, \
                 {maxi} INT NOT NULL, \
                 {last} BIGINT NOT NULL, \
                 {owner} VARCHAR(255) NULL, \
                 {data} {blob} NOT NULL, \
                 PRIMARY KEY ({app}, {id})){opts}",
                blob = d.blob_type(),
                opts = d.table_options(),
            ),
        }
    }

    /// The `ALTER TABLE` that adds shoal's version column (rows written before get 0).
    pub(crate) fn add_version(d: Dialect, n: &Names) -> String {
        format!(
            "ALTER TABLE {} ADD COLUMN {} BIGINT NOT NULL DEFAULT 0",
            d.quote(&n.table),
            d.quote(&n.version)
        )
    }

    /// The `ALTER TABLE` that adds shoal's owner column.
    pub(crate) fn add_owner(d: Dialect, n: &Names) -> String {
        format!(
            "ALTER TABLE {} ADD COLUMN {} VARCHAR(255) NULL",
            d.quote(&n.table),
            d.quote(&n.owner)
        )
    }
}
