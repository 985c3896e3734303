"""The Textual dashboard (`nodeos dashboard`): a client of the API, like kubectl."""
