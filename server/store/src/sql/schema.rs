//! The schema check run at start: connect (reporting refused connections and bad
//! credentials as such), then make sure the table has every column, creating the table or
//! adding shoal's two columns to a Tomcat table when `create_schema` allows it.
use super::backend::{Arg, Kind, Val};
use super::statements::Statements;
use super::SqlStore;
use crate::error::StoreError;
use std::time::Duration;

pub(super) async fn check(s: &SqlStore) -> Result<(), StoreError> {
    if let Some(dir) = s.sqlite_path.as_ref().and_then(|p| p.parent()) {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
                store: s.label.clone(),
                op: "create directory",
                path: dir.display().to_string(),
                source: e,
            })?;
        }
    }
    let wait = Duration::from_millis(s.connect_timeout_ms);
    match tokio::time::timeout(wait, s.backend.probe()).await {
        Err(_) => {
            return Err(StoreError::Unreachable {
                store: s.label.clone(),
                addr: s.addr.clone(),
                detail: format!("no answer within {} ms", s.connect_timeout_ms),
            })
        }
        Ok(Err(e)) => return Err(s.error("connect", e)),
        Ok(Ok(())) => {}
    }
    let mut columns = columns(s).await?;
    if columns.is_empty() {
        if !s.create_schema {
            return Err(StoreError::MissingTable {
                store: s.label.clone(),
                table: s.names.table.clone(),
            });
        }
        s.execute("create table", &s.sql.create_table, Vec::new())
            .await?;
        columns = columns_or_missing(s).await?;
    }
    let has = |c: &str| columns.iter().any(|have| s.dialect.same_column(have, c));
    for (column, setting) in s.names.columns() {
        if has(column) {
            continue;
        }
        let add = if column == s.names.version {
            Some(Statements::add_version(s.dialect, &s.names))
        } else if column == s.names.owner {
            Some(Statements::add_owner(s.dialect, &s.names))
        } else {
            None
        };
        match add {
            Some(alter) if s.create_schema => {
                tracing::info!(store = %s.label, %alter, "adding shoal's column to the session table");
                s.execute("add column", &alter, Vec::new()).await?;
            }
            Some(alter) => {
                return Err(missing(
                    s,
                    column,
                    setting,
                    format!("run `{alter}` or set create_schema = true"),
                ))
            }
            None => {
                return Err(missing(
                    s,
                    column,
                    setting,
                    format!("add the column, or set `{setting}` to the column that holds it"),
                ))
            }
        }
    }
    Ok(())
}

fn missing(s: &SqlStore, column: &str, setting: &'static str, fix: String) -> StoreError {
    StoreError::MissingColumn {
        store: s.label.clone(),
        table: s.names.table.clone(),
        column: column.to_owned(),
        setting,
        fix,
    }
}

/// The table's column names; empty when there is no such table.
async fn columns(s: &SqlStore) -> Result<Vec<String>, StoreError> {
    let rows = s
        .fetch(
            "list columns",
            s.dialect.columns_query(),
            vec![Arg::Text(s.names.table.clone())],
            &[Kind::Text],
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| match r.into_iter().next() {
            Some(Val::Text(name)) => Some(name),
            _ => None,
        })
        .collect())
}

async fn columns_or_missing(s: &SqlStore) -> Result<Vec<String>, StoreError> {
    let found = columns(s).await?;
    if found.is_empty() {
        return Err(StoreError::MissingTable {
            store: s.label.clone(),
            table: s.names.table.clone(),
        });
    }
    Ok(found)
}
