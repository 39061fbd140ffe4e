//! Terminal echo off while a secret is typed, so a recovery passphrase never shows on the
//! screen (or in a terminal's scrollback and screen recordings).

use std::io;
use std::os::fd::AsRawFd;

/// Runs `read` with echo off on standard input's terminal, and restores the terminal's
/// settings afterwards (also when `read` fails). The newline the user types is still echoed
/// (`ECHONL`), so the next output starts on a line of its own.
pub fn without_echo<T>(read: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let fd = io::stdin().as_raw_fd();
    // SAFETY: termios is a plain C struct for which all-zero bytes are a valid value, and
    // tcgetattr overwrites it; fd is standard input, open for the life of the process.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `saved` is a valid, writable termios.
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    // SAFETY: `quiet` is a valid termios derived from the terminal's own settings.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let result = read();
    // SAFETY: `saved` holds the settings tcgetattr returned for this terminal.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    result
}
