"""Cameras: the registry, health probes, snapshots and live view through the app, video-analytics events."""
