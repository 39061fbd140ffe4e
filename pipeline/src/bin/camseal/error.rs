//! How the binary reports a failure: one line saying what went wrong, with its causes, then
//! (when there is one) a line saying what to do about it.

/// Prints `error: ...` (with the chain of causes on the same line) to standard error.
pub fn report(e: &anyhow::Error) {
    let mut line = format!("error: {e}");
    for cause in e.chain().skip(1) {
        line.push_str(": ");
        line.push_str(&cause.to_string());
    }
    eprintln!("{line}");
}
