"""Looking at shards: validate, stats and plots, contact sheets, previews."""
