//! HTTP front: contexts, valve pipelines (tower layers), the bench app
