//! Fabric's channel configuration (`common.Config`): its tree read into the values Ordo's rules
//! use, config updates (`CONFIG_UPDATE`) checked and applied as Fabric's configtx does, and the
//! genesis block configtxgen would write. Pure.
