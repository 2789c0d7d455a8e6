//! One declaration per setting: [`declare_settings!`](crate::declare_settings) turns a list
//! of settings into the options struct (field, doc, default), the `config` name constants,
//! the list of names, the [`Settings`] table that parses `config("NAME=VALUE")` with the
//! reference's spellings and the setting's range check, and the way back from the table to
//! the struct. Adding a setting is one line in one place.

use std::time::Duration;

use crate::error::{Error, Result};
#[cfg(doc)]
use crate::settings::Settings;
use crate::settings::Value;

/// A type a declared setting can have: how it is held in a [`Settings`] table.
pub trait SettingValue: Sized {
    /// The table's value for `self`.
    fn to_value(&self) -> Value;
    /// The field's value from the table's; `name` appears in the error.
    fn from_value(name: &str, value: &Value) -> Result<Self>;
}

fn mismatch(name: &str, expected: &str, value: &Value) -> Error {
    Error::invalid_argument(name, format!("holds {value}, not {expected}"))
}

impl SettingValue for bool {
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
    fn from_value(name: &str, value: &Value) -> Result<Self> {
        match value {
            Value::Bool(b) => Ok(*b),
            other => Err(mismatch(name, "a boolean", other)),
        }
    }
}

impl SettingValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
    fn from_value(name: &str, value: &Value) -> Result<Self> {
        match value {
            Value::Text(t) => Ok(t.clone()),
            other => Err(mismatch(name, "text", other)),
        }
    }
}

macro_rules! integer_setting {
    ($($t:ty),*) => {$(
        impl SettingValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
            fn from_value(name: &str, value: &Value) -> Result<Self> {
                match value {
                    Value::Int(i) => <$t>::try_from(*i).map_err(|_| {
                        Error::invalid_argument(
                            name,
                            format!("{i} does not fit a {}", stringify!($t)),
                        )
                    }),
                    other => Err(mismatch(name, "an integer", other)),
                }
            }
        }
    )*};
}

integer_setting!(u16, u32, u64, usize, i32, i64);

/// Durations are set in milliseconds, as the reference's timeouts are.
impl SettingValue for Duration {
    fn to_value(&self) -> Value {
        Value::Int(i64::try_from(self.as_millis()).unwrap_or(i64::MAX))
    }
    fn from_value(name: &str, value: &Value) -> Result<Self> {
        u64::from_value(name, value).map(Duration::from_millis)
    }
}

/// Declares a struct of settings, each once.
///
/// ```
/// use fsgate_core::settings::Kind;
///
/// fsgate_core::declare_settings! {
///     /// How the example serves requests.
///     pub struct ExampleOptions in example_names {
///         /// `ReadOnly`: refuse every change.
///         pub read_only: bool = false, READ_ONLY = "ReadOnly", Kind::Bool;
///         /// `SectorSize`: bytes per sector.
///         pub sector_size: u32 = 512, SECTOR_SIZE = "SectorSize",
///             Kind::Int { min: 512, max: 65_536 };
///     }
/// }
///
/// let table = ExampleOptions::default().settings();
/// assert_eq!(table.config("readonly=yes").unwrap(), "True");
/// assert!(table.config("SectorSize=7").is_err());
/// let back = ExampleOptions::from_settings(&table).unwrap();
/// assert!(back.read_only);
/// assert_eq!(ExampleOptions::NAMES, ["ReadOnly", "SectorSize"]);
/// assert_eq!(example_names::SECTOR_SIZE, "SectorSize");
/// ```
///
/// Each line is `field: Type = default, CONST = "ConfigName", kind;` with the field's doc
/// comment above it. The macro generates:
/// - the struct with those fields and docs (`Clone`, `Debug`) and its `Default`;
/// - a module (named after `in`) with one `&str` constant per setting;
/// - `NAMES`: the `config` names in declaration order, for listings;
/// - `settings(&self)`: the [`Settings`](crate::settings::Settings) table with these values
///   as its current ones (plus `BuildInfo` and `LicenseInfo`), whose `config` parses the
///   reference's spellings and checks each kind's range;
/// - `from_settings(&table)`: the struct back from a table.
///
/// Field types implement [`SettingValue`] (booleans, integers, `String`, `Duration` in
/// milliseconds; a crate implements it for its own enums).
#[macro_export]
macro_rules! declare_settings {
    (
        $(#[$smeta:meta])*
        $vis:vis struct $name:ident in $names:ident {
            $(
                $(#[$fmeta:meta])*
                $fvis:vis $field:ident : $ty:ty = $default:expr ,
                    $konst:ident = $config:literal , $kind:expr ;
            )*
        }
    ) => {
        $(#[$smeta])*
        #[derive(Clone, Debug)]
        $vis struct $name {
            $(
                $(#[$fmeta])*
                $fvis $field: $ty,
            )*
        }

        impl ::core::default::Default for $name {
            fn default() -> Self {
                Self {
                    $($field: $default,)*
                }
            }
        }

        /// The `config` name of each setting.
        #[allow(dead_code)]
        $vis mod $names {
            $(
                #[doc = concat!("`", $config, "`.")]
                pub const $konst: &str = $config;
            )*
        }

        #[allow(dead_code)]
        impl $name {
            /// The `config` names of the settings, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($config),*];

            /// The `config` table holding these values (and `BuildInfo`, `LicenseInfo`).
            pub fn settings(&self) -> $crate::settings::Settings {
                $crate::settings::Settings::new()
                    $(
                        .with(
                            $config,
                            $kind,
                            $crate::declare::SettingValue::to_value(&self.$field),
                        )
                    )*
                    .with_build_info()
            }

            /// The values as `settings` holds them now.
            pub fn from_settings(
                settings: &$crate::settings::Settings,
            ) -> $crate::Result<Self> {
                Ok(Self {
                    $(
                        $field: $crate::declare::SettingValue::from_value(
                            $config,
                            &settings.get($config)?,
                        )?,
                    )*
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::settings::Kind;

    crate::declare_settings! {
        /// Options of a test class.
        pub struct TestOptions in test_names {
            /// `FilterOwnRequests`.
            pub filter_own_requests: bool = false, OWN = "FilterOwnRequests", Kind::Bool;
            /// `MaxWorkerThreadCount`; 0: automatic.
            pub max_workers: usize = 8, MAX = "MaxWorkerThreadCount",
                Kind::Int { min: 0, max: 1024 };
            /// `Timeout`, in milliseconds.
            pub timeout: Duration = Duration::from_secs(3), TIMEOUT = "Timeout",
                Kind::Int { min: 0, max: 86_400_000 };
            /// `Label`.
            pub label: String = "x".into(), LABEL = "Label", Kind::Text;
            /// `Version`: reported only.
            pub version: u32 = 3, VERSION = "Version", Kind::ReadOnly;
        }
    }

    #[test]
    fn one_declaration_gives_field_default_name_and_listing() {
        let d = TestOptions::default();
        assert!(!d.filter_own_requests);
        assert_eq!(d.max_workers, 8);
        assert_eq!(d.timeout, Duration::from_secs(3));
        assert_eq!(d.label, "x");
        assert_eq!(test_names::MAX, "MaxWorkerThreadCount");
        assert_eq!(
            TestOptions::NAMES,
            [
                "FilterOwnRequests",
                "MaxWorkerThreadCount",
                "Timeout",
                "Label",
                "Version"
            ]
        );
        let table = d.settings();
        for name in TestOptions::NAMES {
            assert!(table.names().contains(name), "{name} not in the table");
        }
    }

    #[test]
    fn config_parses_the_reference_spellings_and_checks_ranges() {
        let table = TestOptions::default().settings();
        assert_eq!(table.config("FilterOwnRequests").unwrap(), "False");
        assert_eq!(table.config("filterownrequests=Yes").unwrap(), "True");
        assert_eq!(table.config("FILTEROWNREQUESTS=0").unwrap(), "False");
        assert_eq!(table.config("MaxWorkerThreadCount=1024").unwrap(), "1024");
        let e = table.config("MaxWorkerThreadCount=1025").unwrap_err();
        assert!(e.message().contains("MaxWorkerThreadCount"), "{e}");
        assert!(e.message().contains("out of range"), "{e}");
        let e = table.config("MaxWorkerThreadCount=-1").unwrap_err();
        assert!(e.message().contains("out of range"), "{e}");
        let e = table.config("Version=4").unwrap_err();
        assert!(e.message().contains("read-only"), "{e}");
        assert_eq!(table.config("Version").unwrap(), "3");
        assert_eq!(table.config("Timeout").unwrap(), "3000");
    }

    #[test]
    fn values_set_through_config_come_back_typed() {
        let table = TestOptions {
            label: "start".into(),
            ..TestOptions::default()
        }
        .settings();
        table.config("FilterOwnRequests=true").unwrap();
        table.config("MaxWorkerThreadCount=3").unwrap();
        table.config("Timeout=250").unwrap();
        table.config("Label=a=b").unwrap();
        let back = TestOptions::from_settings(&table).unwrap();
        assert!(back.filter_own_requests);
        assert_eq!(back.max_workers, 3);
        assert_eq!(back.timeout, Duration::from_millis(250));
        assert_eq!(back.label, "a=b");
        assert_eq!(back.version, 3);
    }
}
