//! `FileMonitor`: notification events for files matching its rules, from the notification
//! engine it shares with the filter.

use std::sync::{Arc, Mutex};

use fsgate_core::dispatch::{Dispatcher, Hooks};
use fsgate_core::sync::{lock, read};
use fsgate_core::{code, Error, Result};

use crate::class::{ClassCore, RuleList};
use crate::events::MonitorEvents;
use crate::notify::{self, NotifyEngine};
use crate::rules::{NotifyFlags, Qualifiers, RuleFlags};
use crate::settings::MonitorSettings;

/// The monitor class: notification events for files matching its rules.
///
/// Add rules with notification flags, then [`start_filter`](Self::start_filter). The
/// monitor marks the filesystem of each mount its masks name (every mount for a mask
/// without a leading path, and the mounts below that path), so it sees changes made through
/// any mount of it; masks then select the events. Mounts that appear or go away while it
/// runs are attached and detached as they do (volume events fire on the reader thread).
/// Rules added or removed while it runs take effect at once: the kernel mask and the
/// attached volumes are recomputed on every rule change. Events are fired on worker
/// threads; events for one file keep their order, and with `serialize_events` all events
/// keep kernel order.
pub struct FileMonitor<H: MonitorEvents> {
    core: ClassCore<H>,
    running: Mutex<Option<(NotifyEngine, Arc<Dispatcher>)>>,
}

impl<H: MonitorEvents> FileMonitor<H> {
    /// A stopped monitor with no rules.
    pub fn new(handler: H) -> Self {
        Self {
            core: ClassCore::new(handler, MonitorSettings::default().settings()),
            running: Mutex::new(None),
        }
    }

    /// The application's handler.
    pub fn handler(&self) -> &H {
        &self.core.handler
    }

    /// Re-marks a running monitor for the rules as they are now.
    fn refresh(&self) -> Result<()> {
        // The engine's marks are taken out first: volume handlers may call into this monitor.
        let marks = lock(&self.running)
            .as_ref()
            .map(|(engine, _)| engine.marks());
        match marks {
            Some(marks) => notify::refresh(&*self.core.handler, &self.core.rules, &marks),
            None => Ok(()),
        }
    }

    /// Adds notification flags for files matching `mask` (aggregated per mask). While
    /// running, the new rule takes effect before this returns (new event kinds are marked,
    /// new volumes attached).
    pub fn add_filter_rule(&self, mask: &str, notify_flags: NotifyFlags) -> Result<()> {
        self.add_filter_rule_ex(mask, notify_flags, Qualifiers::default())
    }

    /// [`add_filter_rule`](Self::add_filter_rule) with size and attribute qualifiers.
    pub fn add_filter_rule_ex(
        &self,
        mask: &str,
        notify_flags: NotifyFlags,
        q: Qualifiers,
    ) -> Result<()> {
        let flags = RuleFlags {
            notify: notify_flags,
            ..Default::default()
        };
        self.core.add_rule(RuleList::Standard, mask, flags, q)?;
        self.refresh()
    }

    /// Removes flags from the rule with this mask; true when it existed.
    pub fn delete_filter_rule(&self, mask: &str, notify_flags: NotifyFlags) -> bool {
        let flags = RuleFlags {
            notify: notify_flags,
            ..Default::default()
        };
        let existed = self.core.delete_rule(RuleList::Standard, mask, Some(flags));
        self.core.report(self.refresh());
        existed
    }

    /// Removes every standard rule.
    pub fn delete_all_filter_rules(&self) {
        self.core.delete_all_rules(RuleList::Standard);
        self.core.report(self.refresh());
    }

    /// Excludes files matching `mask` from the given notifications.
    pub fn add_passthrough_rule(&self, mask: &str, notify_flags: NotifyFlags) -> Result<()> {
        self.add_passthrough_rule_ex(mask, notify_flags, Qualifiers::default())
    }

    /// [`add_passthrough_rule`](Self::add_passthrough_rule) with qualifiers.
    pub fn add_passthrough_rule_ex(
        &self,
        mask: &str,
        notify_flags: NotifyFlags,
        q: Qualifiers,
    ) -> Result<()> {
        let flags = RuleFlags {
            notify: notify_flags,
            ..Default::default()
        };
        self.core.add_rule(RuleList::Passthrough, mask, flags, q)
    }

    /// Removes a passthrough rule; true when it existed.
    pub fn delete_passthrough_rule(&self, mask: &str) -> bool {
        self.core.delete_rule(RuleList::Passthrough, mask, None)
    }

    /// Removes every passthrough rule.
    pub fn delete_all_passthrough_rules(&self) {
        self.core.delete_all_rules(RuleList::Passthrough);
    }

    /// Fires every event on one worker, in kernel order (`serialize_events`).
    pub fn set_serialize_events(&self, on: bool) {
        self.core.set_serialize_events(on);
    }

    /// `config("NAME=VALUE")` / `config("NAME")`: `MinWorkerThreadCount`,
    /// `MaxWorkerThreadCount` (0: automatic), `BuildInfo`, `LicenseInfo`.
    pub fn config(&self, text: &str) -> Result<String> {
        self.core.settings.config(text)
    }

    /// Whether the monitor is running.
    pub fn active(&self) -> bool {
        lock(&self.running).is_some()
    }

    /// Creates the group, attaches volumes and starts firing events. Error 1230 when already
    /// running; an `invalid_argument` error without rules.
    pub fn start_filter(&self) -> Result<()> {
        let mut running = lock(&self.running);
        if running.is_some() {
            return Err(Error::from_code(
                code::ERROR_CONNECTION_ACTIVE,
                "the monitor is already running",
            ));
        }
        if read(&self.core.rules).standard.is_empty() {
            return Err(Error::invalid_argument(
                "rules",
                "add at least one filter rule before start_filter",
            ));
        }
        let options = self
            .core
            .dispatcher_options(fsgate_core::dispatch::Timeout::NONE, "fsgate-monitor")?;
        let dispatcher = Arc::new(Dispatcher::new(
            options,
            Arc::clone(&self.core.handler) as Arc<dyn Hooks>,
        )?);
        let engine = NotifyEngine::start(
            Arc::clone(&self.core.handler),
            Arc::clone(&self.core.rules),
            Arc::clone(&dispatcher),
        )?;
        *running = Some((engine, dispatcher));
        Ok(())
    }

    /// Stops reading, fires the events already read, detaches every volume.
    pub fn stop_filter(&self) -> Result<()> {
        let Some((engine, dispatcher)) = lock(&self.running).take() else {
            return Ok(());
        };
        let volumes = engine.stop();
        dispatcher.wait_idle();
        for v in &volumes {
            self.core.handler.on_after_filter_detach_from_volume(v);
        }
        Ok(())
    }
}

impl<H: MonitorEvents> Drop for FileMonitor<H> {
    fn drop(&mut self) {
        let _ = self.stop_filter();
    }
}
