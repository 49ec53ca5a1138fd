"""The API's routes, one router per concern: the models, dense prediction, prompting, the classical methods, labelling."""
