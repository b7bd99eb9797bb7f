//! Proxmox calendar events.
