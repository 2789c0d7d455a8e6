//! What the monitor and filter classes share: the handler, the rules and their API, the
//! settings, and the helpers every engine uses to evaluate rules and key jobs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use fsgate_core::dispatch::Options;
use fsgate_core::mask::Requestor;
use fsgate_core::originator;
use fsgate_core::sync::write;
use fsgate_core::Result;

use crate::events::MonitorEvents;
use crate::rules::{FileFacts, Qualifiers, RuleFlags, Rules, Subject};

/// Which rule list a rule call is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RuleList {
    /// Standard (filter and access) rules.
    Standard,
    /// Passthrough rules.
    Passthrough,
}

/// The state both classes keep whether running or not.
pub(crate) struct ClassCore<H> {
    pub(crate) handler: Arc<H>,
    pub(crate) rules: Arc<RwLock<Rules>>,
    pub(crate) settings: fsgate_core::settings::Settings,
    serialize_events: AtomicBool,
}

impl<H> ClassCore<H> {
    pub(crate) fn new(handler: H, settings: fsgate_core::settings::Settings) -> Self {
        Self {
            handler: Arc::new(handler),
            rules: Arc::new(RwLock::new(Rules::default())),
            settings,
            serialize_events: AtomicBool::new(false),
        }
    }

    /// Adds `flags` to the rule with `mask` in `list` (rules aggregate per mask).
    pub(crate) fn add_rule(
        &self,
        list: RuleList,
        mask: &str,
        flags: RuleFlags,
        q: Qualifiers,
    ) -> Result<()> {
        let mut rules = write(&self.rules);
        match list {
            RuleList::Standard => rules.standard.add(mask, flags, q),
            RuleList::Passthrough => rules.passthrough.add(mask, flags, q),
        }
    }

    /// Removes `flags` (all of them: `None`) from the rule with `mask`; true when it existed.
    pub(crate) fn delete_rule(&self, list: RuleList, mask: &str, flags: Option<RuleFlags>) -> bool {
        let mut rules = write(&self.rules);
        match list {
            RuleList::Standard => rules.standard.delete(mask, flags),
            RuleList::Passthrough => rules.passthrough.delete(mask, flags),
        }
    }

    /// Removes every rule of `list`.
    pub(crate) fn delete_all_rules(&self, list: RuleList) {
        let mut rules = write(&self.rules);
        match list {
            RuleList::Standard => rules.standard.clear(),
            RuleList::Passthrough => rules.passthrough.clear(),
        }
    }

    /// Reports the failure of a rule change that has no error to return (a removal) to
    /// `on_error`.
    pub(crate) fn report(&self, outcome: Result<()>)
    where
        H: MonitorEvents,
    {
        if let Err(e) = outcome {
            self.handler.on_error(e.code(), e.message());
        }
    }

    pub(crate) fn set_serialize_events(&self, on: bool) {
        self.serialize_events.store(on, Ordering::SeqCst);
    }

    /// The dispatcher options the settings and `serialize_events` ask for.
    pub(crate) fn dispatcher_options(
        &self,
        timeout: fsgate_core::dispatch::Timeout,
        name: &str,
    ) -> Result<Options> {
        dispatcher_options(
            &self.settings,
            self.serialize_events.load(Ordering::SeqCst),
            timeout,
            name,
        )
    }
}

pub(crate) fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// The requestor image and file facts, looked up only when the rules need them.
pub(crate) struct Lookups {
    pub image: Option<String>,
    pub facts: Option<FileFacts>,
}

impl Lookups {
    pub(crate) fn new(
        rules: &Rules,
        pid: u32,
        path: &str,
        meta: impl FnOnce() -> Option<std::fs::Metadata>,
    ) -> Self {
        let image = rules
            .needs_process()
            .then(|| {
                originator::image_path(pid)
                    .or_else(|_| originator::process_name(pid))
                    .ok()
            })
            .flatten();
        let facts = rules
            .needs_facts()
            .then(|| meta().map(|m| FileFacts::from_metadata(path, &m)))
            .flatten();
        Self { image, facts }
    }

    pub(crate) fn subject<'a>(&'a self, path: &'a str, pid: u32) -> Subject<'a> {
        Subject {
            path,
            requestor: self.image.as_deref().map(|image| Requestor { pid, image }),
            facts: self.facts,
        }
    }
}

fn dispatcher_options(
    settings: &fsgate_core::settings::Settings,
    serialize_events: bool,
    timeout: fsgate_core::dispatch::Timeout,
    name: &str,
) -> Result<Options> {
    let d = Options::default();
    let min = settings.get_int(crate::settings::monitor_names::MIN_WORKERS)?;
    let max = settings.get_int(crate::settings::monitor_names::MAX_WORKERS)?;
    Ok(Options {
        min_workers: if min == 0 {
            d.min_workers
        } else {
            min as usize
        },
        max_workers: if max == 0 {
            d.max_workers
        } else {
            max as usize
        },
        serialize_events,
        timeout,
        stack_size: None,
        name: name.into(),
        ..d
    })
}
