//! Gives the shared library a soname, so programs linked against it name
//! `libcamseal.so.0` (the ABI's major version) and `scripts/install-capi.sh` can install
//! the usual `libcamseal.so` development link next to it.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcamseal.so.{SONAME_MAJOR}");
}

/// Bumped when a release breaks the C ABI.
const SONAME_MAJOR: u32 = 0;
