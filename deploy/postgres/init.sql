-- One database per worker (each runs its own migrations), created on the first start of the
-- compose `postgres` service.
CREATE DATABASE orders;
CREATE DATABASE payments;
CREATE DATABASE stock;
