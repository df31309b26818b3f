"""Training stages of the method (METHOD.md): ``teacher`` (stage 0); later: transfer, adaptation."""
