//! Standard output for reports. A reader that goes away (`peer-sim … | head`) ends the process
//! quietly, as SIGPIPE ends other command-line tools; `println!` would panic instead.

use std::io::{ErrorKind, Write};

/// Writes `text` to stdout and flushes it.
pub fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("peer-sim: writing to standard output: {e}");
        std::process::exit(1);
    }
}

/// `println!` through [`print`].
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::out::print(&format!("{}\n", format_args!($($arg)*)))
    };
}
