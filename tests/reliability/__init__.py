"""Tests of kills, damage, full disks, concurrency, hostile input, freshness."""
