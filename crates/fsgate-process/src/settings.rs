//! The process filter's `config` settings, each declared once.

use fsgate_core::settings::Kind;

fsgate_core::declare_settings! {
    /// What `config("NAME=VALUE")` sets on a [`ProcessFilter`](crate::ProcessFilter).
    pub(crate) struct ProcessSettings in names {
        /// `EventsToFire`: the `PROC_EVT_*` flags of the events that fire (-1: all).
        pub(crate) events_to_fire: i64 = 0, EVENTS_TO_FIRE = "EventsToFire",
            Kind::Int { min: -1, max: u32::MAX as i64 };
        /// `FilterOwnRequests`: requests of this process fire events too.
        pub(crate) filter_own_requests: bool = false,
            FILTER_OWN_REQUESTS = "FilterOwnRequests", Kind::Bool;
        /// `MaxWorkerThreadCount`; 0: automatic. Fixed while active.
        pub(crate) max_worker_thread_count: usize = 0, MAX_WORKERS = "MaxWorkerThreadCount",
            Kind::Int { min: 0, max: 1024 };
        /// `MinWorkerThreadCount`; 0: automatic. Fixed while active.
        pub(crate) min_worker_thread_count: usize = 0, MIN_WORKERS = "MinWorkerThreadCount",
            Kind::Int { min: 0, max: 1024 };
        /// `WorkerInitialStackSize` in bytes; 0: the default. Fixed while active.
        pub(crate) worker_initial_stack_size: usize = 0,
            STACK_SIZE = "WorkerInitialStackSize", Kind::Int { min: 0, max: 1 << 30 };
        /// `LoggingEnabled`: log each fired event; persistent in the installation's
        /// settings file, so `config` reads and writes it there.
        pub(crate) logging_enabled: bool = false, LOGGING_ENABLED = "LoggingEnabled", Kind::Bool;
        /// `DenyExpiredEvents`: an exec whose handler timed out is denied, not allowed.
        pub(crate) deny_expired_events: bool = false,
            DENY_EXPIRED_EVENTS = "DenyExpiredEvents", Kind::Bool;
        /// `TraceHandleSyscalls` (Linux extension): handle operations include `ptrace`,
        /// `process_vm_readv`/`writev` and `pidfd_getfd`, seen from their system call
        /// tracepoints, which put every system call of every process on the kernel's slower
        /// traced path while the filter runs. False: signals only, which cost nothing
        /// outside signal generation. Fixed while active.
        pub(crate) trace_handle_syscalls: bool = true,
            TRACE_HANDLE_SYSCALLS = "TraceHandleSyscalls", Kind::Bool;
    }
}

/// Settings that cannot change while the filter is active.
pub(crate) const FIXED_WHILE_ACTIVE: &[&str] = &[
    names::MAX_WORKERS,
    names::MIN_WORKERS,
    names::STACK_SIZE,
    names::TRACE_HANDLE_SYSCALLS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logging_enabled_is_the_name_the_installation_stores() {
        assert_eq!(
            names::LOGGING_ENABLED,
            fsgate_registry::config::LOGGING_ENABLED
        );
    }

    #[test]
    fn events_to_fire_takes_minus_one_and_every_u32() {
        let table = ProcessSettings::default().settings();
        assert_eq!(table.config("EventsToFire=-1").unwrap(), "-1");
        assert_eq!(
            table.config("EventsToFire=4294967295").unwrap(),
            "4294967295"
        );
        assert!(table.config("EventsToFire=4294967296").is_err());
        assert!(table.config("EventsToFire=-2").is_err());
        assert!(table.config("WorkerInitialStackSize=1073741825").is_err());
    }
}
