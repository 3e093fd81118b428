"""How experience becomes updates of the global network: the actor-learner loop of the A3C paper, and
the drivers that run it (A3C's Hogwild processes, A3C on Ray, A2C), each beside its backend."""
