//! What a drive tells the kernel changed behind its back. Its own module so that the drive
//! (`drive.rs`) and the mount (`mounted.rs`) both depend on it and not on each other.

/// What changed behind the kernel's back, for
/// [`VirtualDrive::notify_directory_change`](crate::VirtualDrive::notify_directory_change).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeAction {
    /// A name appeared.
    Added,
    /// A name went away.
    Removed,
    /// The object's data or metadata changed.
    Modified,
}
