//! Small pieces shared by several layers, below all of them: the 32-bit mark with its mask
//! (netfilter matches and sets it, policy routing selects on it), number parsing as iptables
//! and iproute2 write numbers, and a fast hasher for maps keyed by the user's own input.
//! Nothing here imports another module of the crate.

pub(crate) mod fasthash;
pub mod mark;
pub mod num;

pub use mark::MarkMask;
