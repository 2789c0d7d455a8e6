//! A mounted drive: its FUSE session, dispatcher and mounting points.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fsgate_core::{Error, Result};

use crate::drive::ChangeAction;
use crate::events::Events;
use crate::options::Options;

/// The serving state of a mounted drive.
pub(crate) struct Mounted<E: Events> {
    _events: PhantomData<E>,
}

impl<E: Events> Mounted<E> {
    pub(crate) fn start(_e: Arc<E>, _o: Options, _p: &Path, _t: u32) -> Result<Self> {
        Err(Error::not_ready("mount: being implemented"))
    }
    pub(crate) fn serving(&self) -> bool {
        false
    }
    pub(crate) fn mounting_points(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    pub(crate) fn add_mounting_point(&mut self, _p: &Path) -> Result<()> {
        Err(Error::not_ready("being implemented"))
    }
    pub(crate) fn delete_mounting_point(&mut self, _p: &Path) -> Result<()> {
        Err(Error::not_ready("being implemented"))
    }
    pub(crate) fn volume_id(&self) -> u32 {
        0
    }
    pub(crate) fn stop(self) -> Result<()> {
        Ok(())
    }
    pub(crate) fn notify_directory_change(&self, _f: &str, _a: ChangeAction) -> Result<()> {
        Ok(())
    }
    pub(crate) fn notify_file_change(&self, _f: &str) -> Result<()> {
        Ok(())
    }
}
