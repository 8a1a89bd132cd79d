"""Third-party PI Web API clients (tagreader, the PI Developers Club client, kukur) driven against mock_pi."""
