//! [`Options`]: what a server runs with besides its experiment and database:
//! the catalogs its games draw on and its limits.

use tandem_envs::Catalog;
use tandem_policy::Registry;

/// The most participant sockets a server holds by default; more are closed
/// with code 1013 ("try again later").
pub const DEFAULT_MAX_SOCKETS: usize = 20_000;

/// What a server runs with besides its experiment and database.
#[derive(Clone, Debug)]
pub struct Options {
    /// Every policy a seat may name: the built-ins and the experiment's own.
    pub policies: Registry,
    /// Every environment a game scene may name; experiment files must be read
    /// with the same catalog.
    pub envs: Catalog,
    /// The cap on open participant sockets.
    pub max_sockets: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            policies: Registry::builtin(),
            envs: Catalog::builtin(),
            max_sockets: DEFAULT_MAX_SOCKETS,
        }
    }
}
