//! The installer functions: fsgate's system files for a product, as the reference's installer
//! DLL offers them, with an optional installation `root` (default `$FSGATE_ROOT`, else `/`).

use std::path::{Path, PathBuf};

use fsgate_install::{Installer, Package};
use pyo3::prelude::*;

use crate::error::check;

/// The installer for `root`, or this machine's.
fn installer(root: Option<PathBuf>) -> Installer {
    root.map_or_else(Installer::system, Installer::new)
}

/// Builds fsgate's installable package at `outfile` with `helper_binary` as its helper (what
/// `fsgate package OUTFILE` does); returns the package's version.
#[pyfunction]
pub(crate) fn build_package(
    py: Python<'_>,
    outfile: PathBuf,
    helper_binary: PathBuf,
) -> PyResult<String> {
    let manifest = check(py, py.detach(|| Package::build(&outfile, &helper_binary)))?;
    Ok(manifest.version)
}

/// Installs (or upgrades) the package `cab_file_name` for `product_guid`; returns whether a
/// reboot is needed.
#[pyfunction]
#[pyo3(signature = (cab_file_name, product_guid, path_to_install = "", flags = 0, root = None))]
pub(crate) fn install(
    py: Python<'_>,
    cab_file_name: PathBuf,
    product_guid: &str,
    path_to_install: &str,
    flags: u32,
    root: Option<PathBuf>,
) -> PyResult<bool> {
    let i = installer(root);
    check(
        py,
        py.detach(|| {
            i.install(
                Path::new(&cab_file_name),
                product_guid,
                path_to_install,
                flags,
            )
        }),
    )
}

/// Removes `product_guid`'s installation; returns whether a reboot is needed.
#[pyfunction]
#[pyo3(signature = (cab_file_name, product_guid, installed_path = "", flags = 0, root = None))]
pub(crate) fn uninstall(
    py: Python<'_>,
    cab_file_name: PathBuf,
    product_guid: &str,
    installed_path: &str,
    flags: u32,
    root: Option<PathBuf>,
) -> PyResult<bool> {
    let i = installer(root);
    check(
        py,
        py.detach(|| {
            i.uninstall(
                Path::new(&cab_file_name),
                product_guid,
                installed_path,
                flags,
            )
        }),
    )
}

/// 0 not present, 1 stopped, 4 running.
#[pyfunction]
#[pyo3(signature = (product_guid, root = None))]
pub(crate) fn get_driver_status(
    py: Python<'_>,
    product_guid: &str,
    root: Option<PathBuf>,
) -> PyResult<u32> {
    check(py, installer(root).get_driver_status(product_guid))
}

/// The installed version, four 16-bit parts in 64 bits; 0 when not installed.
#[pyfunction]
#[pyo3(signature = (product_guid, root = None))]
pub(crate) fn get_driver_version(
    py: Python<'_>,
    product_guid: &str,
    root: Option<PathBuf>,
) -> PyResult<u64> {
    check(py, installer(root).get_driver_version(product_guid))
}

/// Raises `FsgateError` (2: not installed, 340: older than this library) unless fsgate is
/// installed for `product_guid`.
#[pyfunction]
#[pyo3(signature = (product_guid, root = None))]
pub(crate) fn verify_installed(
    py: Python<'_>,
    product_guid: &str,
    root: Option<PathBuf>,
) -> PyResult<()> {
    check(py, installer(root).verify_installed(product_guid))
}

/// Adds the functions to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(build_package, m)?)?;
    m.add_function(wrap_pyfunction!(install, m)?)?;
    m.add_function(wrap_pyfunction!(uninstall, m)?)?;
    m.add_function(wrap_pyfunction!(get_driver_status, m)?)?;
    m.add_function(wrap_pyfunction!(get_driver_version, m)?)?;
    m.add_function(wrap_pyfunction!(verify_installed, m)?)?;
    Ok(())
}
