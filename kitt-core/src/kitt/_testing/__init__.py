"""What KITT makes to test engines with no downloads: its own tiny model (`tinymodel`)."""
