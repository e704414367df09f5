"""One Pulumi component per module, named after the domain. Pure render functions live beside them."""
