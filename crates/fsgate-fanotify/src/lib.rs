//! Safe wrapper over Linux fanotify (being written: see the file filter issue).
