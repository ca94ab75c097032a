"""Person re-identification across two images: detection, embedding, matching."""
