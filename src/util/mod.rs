//! Small pieces shared by several layers, below all of them: the 32-bit mark with its mask
//! (netfilter matches and sets it, policy routing selects on it), number parsing as iptables
//! and iproute2 write numbers, a fast hasher for maps keyed by the user's own input, and
//! reading and counting through big input files, escaping the user's text for a terminal.
//! Nothing here imports another module of the crate.

pub mod bytes;
pub mod escape;
pub(crate) mod fasthash;
pub mod mark;
pub mod num;
pub mod read;
pub mod yaml;

pub use mark::MarkMask;
