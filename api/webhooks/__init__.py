"""Events that payment processors send: each verified, stored once and acknowledged (``stripe``)."""
