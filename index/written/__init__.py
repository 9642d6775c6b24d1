"""Optional written answers: an OpenAI-compatible client, the versioned prompt, and the check that
every citation and quote in the answer is in the passages it was given."""
