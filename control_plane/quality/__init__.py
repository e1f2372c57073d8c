"""Online model quality: feedback joined with recorded predictions, per version."""
