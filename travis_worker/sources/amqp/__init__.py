"""Everything that speaks AMQP: connections, job source, state updates, log parts, commands."""
