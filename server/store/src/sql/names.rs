//! The table and column names of a SQL store, from settings under Tomcat's names, checked
//! so they can be quoted and never change the meaning of a statement.
use crate::config::SqlConfig;
use crate::error::StoreError;

/// Validated identifiers (`[A-Za-z_][A-Za-z0-9_$]*`, at most 64 characters).
#[derive(Clone, Debug)]
pub(crate) struct Names {
    pub(crate) table: String,
    pub(crate) id: String,
    pub(crate) app: String,
    pub(crate) valid: String,
    pub(crate) max_inactive: String,
    pub(crate) last_access: String,
    pub(crate) data: String,
    pub(crate) version: String,
    pub(crate) owner: String,
}

impl Names {
    pub(crate) fn from_config(store: &str, c: &SqlConfig) -> Result<Self, StoreError> {
        let check = |key: &str, value: &str| -> Result<String, StoreError> {
            let mut chars = value.chars();
            let ok = value.len() <= 64
                && chars
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
            if ok {
                Ok(value.to_owned())
            } else {
                Err(StoreError::Config {
                    store: store.to_owned(),
                    key: key.to_owned(),
                    detail: format!(
                        "{value:?} is not a plain SQL name; use 1 to 64 characters of \
                         A-Z, a-z, 0-9, '_' and '$', not starting with a digit or '$'"
                    ),
                })
            }
        };
        Ok(Names {
            table: check("session_table", &c.session_table)?,
            id: check("session_id_col", &c.session_id_col)?,
            app: check("session_app_col", &c.session_app_col)?,
            valid: check("session_valid_col", &c.session_valid_col)?,
            max_inactive: check("session_max_inactive_col", &c.session_max_inactive_col)?,
            last_access: check("session_last_accessed_col", &c.session_last_accessed_col)?,
            data: check("session_data_col", &c.session_data_col)?,
            version: check("session_version_col", &c.session_version_col)?,
            owner: check("session_owner_col", &c.session_owner_col)?,
        })
    }

    /// Every column with its setting name, Tomcat's first, then shoal's two.
    pub(crate) fn columns(&self) -> [(&str, &'static str); 8] {
        [
            (&self.id, "session_id_col"),
            (&self.app, "session_app_col"),
            (&self.valid, "session_valid_col"),
            (&self.max_inactive, "session_max_inactive_col"),
            (&self.last_access, "session_last_accessed_col"),
            (&self.data, "session_data_col"),
            (&self.version, "session_version_col"),
            (&self.owner, "session_owner_col"),
        ]
    }
}
