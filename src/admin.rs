//! `tandem admin`: managing who may use the researcher console.
//!
//! `add-user NAME` asks for the password twice at a terminal (without echo),
//! or reads one line from standard input otherwise (for scripts: `printf
//! '%s\n' "$PASSWORD" | tandem admin add-user ada`), so a password never
//! appears on a command line where `ps` would show it. Only its argon2id hash
//! is stored.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use tandem_server::accounts;
use tandem_store::{Store, StoreError};

/// `tandem admin`'s commands.
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Add a researcher who may log in to the console. The password is asked
    /// for (or read from standard input when it is not a terminal).
    AddUser {
        /// The user name: letters, digits, '.', '_' or '-'.
        name: String,
        /// The database the server records to (a SQLite file path or sqlite: URL).
        #[arg(long, default_value = "tandem.db")]
        db: String,
    },
}

/// Runs an admin command: 0 done, 1 a failure, 2 refused input.
pub fn run(command: AdminCommand) -> anyhow::Result<ExitCode> {
    match command {
        AdminCommand::AddUser { name, db } => add_user(&name, &db),
    }
}

fn add_user(name: &str, db: &str) -> anyhow::Result<ExitCode> {
    if let Err(e) = accounts::check_name(name) {
        eprintln!("error: {e}");
        return Ok(ExitCode::from(2));
    }
    let password = match read_password() {
        Ok(Some(password)) => password,
        Ok(None) => {
            eprintln!("error: the two passwords differ; nothing was changed");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e).context("could not read the password"),
    };
    let hash = match accounts::hash_password(&password) {
        Ok(hash) => hash,
        Err(e @ accounts::AccountError::Hashing(_)) => return Err(e.into()),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async {
        let store = Store::open(db)
            .await
            .with_context(|| format!("could not open the database {db}"))?;
        match store.add_console_user(name, &hash).await {
            Ok(_) => {
                println!("added console user {name:?} to {db}");
                Ok(ExitCode::SUCCESS)
            }
            Err(StoreError::Duplicate(_)) => {
                eprintln!("error: there is already a console user called {name:?}");
                Ok(ExitCode::from(1))
            }
            Err(e) => Err(e).context("could not store the user"),
        }
    })
}

/// The password: typed twice at a terminal (`None` when they differ), or the
/// first line of standard input.
fn read_password() -> std::io::Result<Option<String>> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password again: ")?;
        return Ok((first == again).then_some(first));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
}
