//! sessions: model, DeltaManager and BackupManager state machines, stores
