//! How the CLI describes cameras, recipients and the files it wrote: shared by the `viewer`,
//! `camera` and `decrypt` commands, so that none of them imports another.

use std::io::{self, Write};
use std::path::PathBuf;

use camseal::home::PinnedCamera;
use camseal::keys::{KemKind, Recipient};

/// `ID`, or `ID ("NAME")` when the name is not the id.
pub fn describe_camera(camera: &PinnedCamera) -> String {
    let id = camera.public.id();
    if camera.name == id {
        id
    } else {
        format!("{id} ({:?})", camera.name)
    }
}

/// One line for a recipient: label, KEM and the start of the key.
pub fn describe_recipient(r: &Recipient) -> String {
    let kem = match KemKind::from_id(r.kem) {
        Some(KemKind::X25519) => "x25519".to_owned(),
        Some(KemKind::XWing) => "x-wing".to_owned(),
        None => format!("kem 0x{:04x}", r.kem),
    };
    let prefix = hex::encode(&r.public_key[..r.public_key.len().min(8)]);
    let label = if r.label.is_empty() {
        "(no label)"
    } else {
        &r.label
    };
    format!("{label:<16} {kem} {prefix}...")
}

/// Prints `path  description` rows with the descriptions aligned.
pub fn write_files(out: &mut impl Write, rows: &[(PathBuf, &str)]) -> io::Result<()> {
    let width = rows
        .iter()
        .map(|(p, _)| p.display().to_string().chars().count())
        .max()
        .unwrap_or(0);
    for (path, what) in rows {
        writeln!(out, "  {:<width$}  {what}", path.display().to_string())?;
    }
    Ok(())
}
