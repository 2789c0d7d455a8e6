//! `config("NAME=VALUE")` settings shared by every class.
//!
//! Each class owns a [`Settings`] table declaring its settings with a [`Kind`]; its typed
//! setters and its `config` method both go through the table, so the two can never disagree.
//! Names match without regard to case, as in the reference. Booleans accept the reference's
//! spellings: `True`/`False`, `Yes`/`No`, `1`/`0`, in any case.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use crate::error::{Error, Result};

/// What values a setting takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A boolean in any of the reference's spellings.
    Bool,
    /// An integer in `min..=max`.
    Int {
        /// The smallest value accepted.
        min: i64,
        /// The largest value accepted.
        max: i64,
    },
    /// Free text.
    Text,
    /// A value the class reports but the application cannot change (`BuildInfo`, …).
    ReadOnly,
}

/// A setting's current value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Text(s) => f.write_str(s),
        }
    }
}

/// Parses a boolean in the reference's spellings (`True`/`False`, `Yes`/`No`, `1`/`0`, any
/// case); `name` appears in the error.
pub fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        other => Err(Error::invalid_argument(
            name,
            format!("'{other}' is not a boolean (use True/False, Yes/No or 1/0)"),
        )),
    }
}

/// One `config` request: `NAME=VALUE` sets, `NAME` alone reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// Read the setting `name`.
    Get(&'a str),
    /// Set `name` to `value`.
    Set(&'a str, &'a str),
}

impl<'a> Request<'a> {
    /// Splits a `config` string at its first `=`; names are trimmed, values are kept verbatim.
    pub fn parse(text: &'a str) -> Result<Self> {
        let (name, value) = match text.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v)),
            None => (text.trim(), None),
        };
        if name.is_empty() {
            return Err(Error::invalid_argument(
                "config",
                format!("'{text}' has no setting name"),
            ));
        }
        Ok(match value {
            Some(v) => Request::Set(name, v),
            None => Request::Get(name),
        })
    }
}

struct Entry {
    name: &'static str,
    kind: Kind,
    value: Value,
}

/// A class's table of settings, safe to share between threads.
pub struct Settings {
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self::new()
    }
}

impl Settings {
    /// An empty table.
    pub fn new() -> Self {
        Self {
            entries: Mutex::new(BTreeMap::new()),
        }
    }

    /// Declares a setting with its kind and default value (builder style).
    pub fn with(self, name: &'static str, kind: Kind, default: Value) -> Self {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(
                name.to_ascii_lowercase(),
                Entry {
                    name,
                    kind,
                    value: default,
                },
            );
        }
        self
    }

    /// Declares the `BuildInfo` and `LicenseInfo` read-only settings every class reports.
    pub fn with_build_info(self) -> Self {
        self.with(
            "BuildInfo",
            Kind::ReadOnly,
            Value::Text(crate::build::BuildInfo::current().to_string()),
        )
        .with(
            "LicenseInfo",
            Kind::ReadOnly,
            Value::Text(crate::build::LICENSE_INFO.to_string()),
        )
    }

    /// Runs one `config` request: returns the value after the request (for a set, the value
    /// now in force).
    pub fn config(&self, text: &str) -> Result<String> {
        match Request::parse(text)? {
            Request::Get(name) => Ok(self.get(name)?.to_string()),
            Request::Set(name, value) => {
                self.set_text(name, value)?;
                Ok(self.get(name)?.to_string())
            }
        }
    }

    /// The current value of `name`.
    pub fn get(&self, name: &str) -> Result<Value> {
        let entries = self.lock()?;
        entries
            .get(&name.to_ascii_lowercase())
            .map(|e| e.value.clone())
            .ok_or_else(|| unknown(name))
    }

    /// A boolean setting's value.
    pub fn get_bool(&self, name: &str) -> Result<bool> {
        match self.get(name)? {
            Value::Bool(b) => Ok(b),
            other => Err(Error::invalid_argument(
                name,
                format!("is not a boolean setting (value {other})"),
            )),
        }
    }

    /// An integer setting's value.
    pub fn get_int(&self, name: &str) -> Result<i64> {
        match self.get(name)? {
            Value::Int(i) => Ok(i),
            other => Err(Error::invalid_argument(
                name,
                format!("is not an integer setting (value {other})"),
            )),
        }
    }

    /// Sets `name` from text, checking it against the setting's kind.
    pub fn set_text(&self, name: &str, text: &str) -> Result<()> {
        let mut entries = self.lock()?;
        let entry = entries
            .get_mut(&name.to_ascii_lowercase())
            .ok_or_else(|| unknown(name))?;
        entry.value = parse_value(entry.name, &entry.kind, text)?;
        Ok(())
    }

    /// Sets `name` to a typed value, checking it against the setting's kind.
    pub fn set(&self, name: &str, value: Value) -> Result<()> {
        let mut entries = self.lock()?;
        let entry = entries
            .get_mut(&name.to_ascii_lowercase())
            .ok_or_else(|| unknown(name))?;
        let ok = match (&entry.kind, &value) {
            (Kind::Bool, Value::Bool(_)) | (Kind::Text, Value::Text(_)) => true,
            (Kind::Int { min, max }, Value::Int(i)) => (*min..=*max).contains(i),
            _ => false,
        };
        if !ok {
            return Err(Error::invalid_argument(
                entry.name,
                format!("{value} is not accepted ({})", describe(&entry.kind)),
            ));
        }
        entry.value = value;
        Ok(())
    }

    /// The names of all settings, as declared.
    pub fn names(&self) -> Vec<&'static str> {
        self.lock()
            .map(|e| e.values().map(|e| e.name).collect())
            .unwrap_or_default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Entry>>> {
        self.entries
            .lock()
            .map_err(|_| Error::from_code(crate::code::ERROR_INTERNAL_ERROR, "settings poisoned"))
    }
}

fn unknown(name: &str) -> Error {
    Error::invalid_argument("config", format!("unknown setting '{name}'"))
}

fn describe(kind: &Kind) -> String {
    match kind {
        Kind::Bool => "expects True/False, Yes/No or 1/0".into(),
        Kind::Int { min, max } => format!("expects an integer from {min} to {max}"),
        Kind::Text => "expects text".into(),
        Kind::ReadOnly => "is read-only".into(),
    }
}

fn parse_value(name: &str, kind: &Kind, text: &str) -> Result<Value> {
    match kind {
        Kind::Bool => parse_bool(name, text).map(Value::Bool),
        Kind::Int { min, max } => {
            let i: i64 = text.trim().parse().map_err(|_| {
                Error::invalid_argument(name, format!("'{text}' is not an integer"))
            })?;
            if !(*min..=*max).contains(&i) {
                return Err(Error::invalid_argument(
                    name,
                    format!("{i} is out of range {min}..={max}"),
                ));
            }
            Ok(Value::Int(i))
        }
        Kind::Text => Ok(Value::Text(text.to_string())),
        Kind::ReadOnly => Err(Error::invalid_argument(name, "is read-only")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Settings {
        Settings::new()
            .with("FilterOwnRequests", Kind::Bool, Value::Bool(false))
            .with(
                "MaxWorkerThreadCount",
                Kind::Int { min: 0, max: 1024 },
                Value::Int(8),
            )
            .with("Label", Kind::Text, Value::Text("x".into()))
            .with_build_info()
    }

    #[test]
    fn booleans_accept_reference_spellings() {
        for t in ["True", "true", "TRUE", "yes", "Yes", "1", " 1 "] {
            assert!(parse_bool("x", t).unwrap(), "{t}");
        }
        for f in ["False", "false", "no", "NO", "0"] {
            assert!(!parse_bool("x", f).unwrap(), "{f}");
        }
        let e = parse_bool("FilterOwnRequests", "maybe").unwrap_err();
        assert!(e.message().contains("FilterOwnRequests"));
        assert!(e.message().contains("maybe"));
    }

    #[test]
    fn config_sets_and_reads_case_insensitively() {
        let s = table();
        assert_eq!(s.config("filterownrequests").unwrap(), "False");
        assert_eq!(s.config("FilterOwnRequests=yes").unwrap(), "True");
        assert!(s.get_bool("FILTEROWNREQUESTS").unwrap());
        assert_eq!(s.config("MaxWorkerThreadCount=16").unwrap(), "16");
        assert_eq!(s.get_int("maxworkerthreadcount").unwrap(), 16);
        assert_eq!(s.config("Label=a=b").unwrap(), "a=b");
    }

    #[test]
    fn bad_names_and_values_are_clear_errors() {
        let s = table();
        let e = s.config("NoSuchSetting=1").unwrap_err();
        assert!(e.message().contains("unknown setting 'NoSuchSetting'"));
        let e = s.config("MaxWorkerThreadCount=2000").unwrap_err();
        assert!(e.message().contains("MaxWorkerThreadCount"));
        assert!(e.message().contains("out of range"));
        let e = s.config("MaxWorkerThreadCount=many").unwrap_err();
        assert!(e.message().contains("not an integer"));
        let e = s.config("BuildInfo=1").unwrap_err();
        assert!(e.message().contains("read-only"));
        assert!(s.config("=1").is_err());
        assert!(s.set("Label", Value::Int(1)).is_err());
    }

    #[test]
    fn build_and_license_info_are_reported() {
        let s = table();
        assert!(s
            .config("BuildInfo")
            .unwrap()
            .contains(env!("CARGO_PKG_VERSION")));
        assert!(s.config("LicenseInfo").unwrap().contains("MIT"));
    }
}
