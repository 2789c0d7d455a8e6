//! The monitor's and the filter's `config` settings, each declared once per class.

use fsgate_core::settings::Kind;

fsgate_core::declare_settings! {
    /// What `config("NAME=VALUE")` sets on a [`FileMonitor`](crate::monitor::FileMonitor).
    pub(crate) struct MonitorSettings in monitor_names {
        /// `MinWorkerThreadCount`: threads kept even when idle; 0: the dispatcher's default.
        pub(crate) min_worker_thread_count: usize = 0,
            MIN_WORKERS = "MinWorkerThreadCount", Kind::Int { min: 0, max: 1024 };
        /// `MaxWorkerThreadCount`: the most threads events run on; 0: the dispatcher's
        /// default.
        pub(crate) max_worker_thread_count: usize = 0,
            MAX_WORKERS = "MaxWorkerThreadCount", Kind::Int { min: 0, max: 1024 };
    }
}

fsgate_core::declare_settings! {
    /// What `config("NAME=VALUE")` sets on a [`FileFilter`](crate::filter::FileFilter).
    pub(crate) struct FilterSettings in filter_names {
        /// `MinWorkerThreadCount`: threads kept even when idle; 0: the dispatcher's default.
        pub(crate) min_worker_thread_count: usize = 0,
            MIN_WORKERS = "MinWorkerThreadCount", Kind::Int { min: 0, max: 1024 };
        /// `MaxWorkerThreadCount`: the most threads events run on; 0: the dispatcher's
        /// default.
        pub(crate) max_worker_thread_count: usize = 0,
            MAX_WORKERS = "MaxWorkerThreadCount", Kind::Int { min: 0, max: 1024 };
        /// `DenyExpiredEvents`: an operation whose handler timed out is denied, not
        /// allowed.
        pub(crate) deny_expired_events: bool = false,
            DENY_EXPIRED_EVENTS = "DenyExpiredEvents", Kind::Bool;
        /// `Backend`: which backend serves the rules — `Auto` (the default: the overlay when
        /// a rule needs it, fanotify otherwise), `Overlay` or `Fanotify`; read at
        /// `start_filter`.
        pub(crate) backend: String = "Auto".to_string(), BACKEND = "Backend", Kind::Text;
        /// `ProcessFailedRequests`: After events of the overlay fire for failed operations
        /// too (with their `result_code`); default false.
        pub(crate) process_failed_requests: bool = false,
            PROCESS_FAILED_REQUESTS = "ProcessFailedRequests", Kind::Bool;
        /// `FilterOwnRequests`: always false, read-only (the listener's own requests are
        /// never filtered, see the crate docs).
        pub(crate) filter_own_requests: bool = false,
            FILTER_OWN_REQUESTS = "FilterOwnRequests", Kind::ReadOnly;
    }
}

/// Which backend serves a filter's rules (the `Backend` setting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    /// The overlay when a rule needs it, fanotify otherwise.
    Auto,
    /// Always the overlay.
    Overlay,
    /// Always fanotify (rules that need the overlay are refused).
    Fanotify,
}

impl Backend {
    /// Parses the setting's text (any case); errors name the setting.
    pub(crate) fn parse(text: &str) -> fsgate_core::Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "auto" => Ok(Backend::Auto),
            "overlay" => Ok(Backend::Overlay),
            "fanotify" => Ok(Backend::Fanotify),
            _ => Err(fsgate_core::Error::invalid_argument(
                filter_names::BACKEND,
                format!("{text:?} is not Auto, Overlay or Fanotify"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_takes_the_reference_spellings_and_refuses_the_read_only_one() {
        let table = FilterSettings::default().settings();
        assert_eq!(table.config("denyexpiredevents=yes").unwrap(), "True");
        assert_eq!(table.config("MaxWorkerThreadCount=8").unwrap(), "8");
        assert!(table.config("MaxWorkerThreadCount=5000").is_err());
        assert!(table.config("FilterOwnRequests=true").is_err());
        assert_eq!(table.config("Backend").unwrap(), "Auto");
        table.config("Backend=Overlay").unwrap();
        let back = FilterSettings::from_settings(&table).unwrap();
        assert_eq!(Backend::parse(&back.backend).unwrap(), Backend::Overlay);
        assert!(Backend::parse("Sideways").is_err());
        assert!(back.deny_expired_events);
        assert_eq!(back.max_worker_thread_count, 8);
        assert_eq!(
            MonitorSettings::NAMES,
            ["MinWorkerThreadCount", "MaxWorkerThreadCount"]
        );
    }
}
