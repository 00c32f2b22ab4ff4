"""Infrastructure that knows no domain words: database, errors, clock, logging, security, HTTP."""
