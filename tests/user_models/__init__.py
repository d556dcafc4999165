"""Two spiking models a user might write, outside the aqsvit package and never registered."""
